"""The Echo messages for python, built at run time from proto/interop_echo.proto.

Debian has no grpc_tools for this protobuf, so the .proto is compiled to a
FileDescriptorSet by protoc-c (`-o`, the same compiler the C peers use) and
the message classes are made from it with python3-protobuf's message factory.
"""

import os
import subprocess
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "proto")
PROTO = "interop_echo.proto"
SERVICE = "anchor.interop.Echo"


def _load():
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "echo.desc")
        subprocess.run(
            ["protoc-c", "--proto_path=" + PROTO_DIR, "-o", out, PROTO],
            check=True,
        )
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)
    get = lambda n: factory.GetPrototype(pool.FindMessageTypeByName(n))
    return get("anchor.interop.EchoRequest"), get("anchor.interop.EchoReply"), get(
        "anchor.interop.Pair"
    )


EchoRequest, EchoReply, Pair = _load()


def method(name):
    """The full path of an Echo method, e.g. /anchor.interop.Echo/Count."""
    return "/%s/%s" % (SERVICE, name)
