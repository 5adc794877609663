'use strict';
/*
 * node @grpc/grpc-js peer for anchor's interop tests: a server of the Echo
 * service (proto/interop_echo.proto) and a client that runs the cases the
 * tests hand it, printing one JSON line per case. The python tests start it;
 * they drive the same cases through every client, so that the results of
 * python3-grpcio, grpc-js and libanchor's own client compare line by line.
 *
 *   node node_peer.js server (--unix PATH | --port N) [--cert F --key F [--ca F]]
 *       prints {"ready": true, ...} once listening, serves until SIGTERM.
 *   node node_peer.js client --target T [--ca F [--cert F --key F]] --cases FILE
 *       T is unix:PATH or HOST:PORT; FILE is a JSON list of cases (see
 *       cases.py); prints one result line per case.
 */
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, 'proto', 'interop_echo.proto');
const pkgDef = protoLoader.loadSync(PROTO, {
  keepCase: true, longs: Number, enums: Number, defaults: true, oneofs: true,
});
const service = pkgDef['anchor.interop.Echo'];

function parseArgs(argv) {
  const out = {_: []};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      out[argv[i].slice(2)] = argv[i + 1];
      i++;
    } else {
      out._.push(argv[i]);
    }
  }
  return out;
}

function mdValue(key, v) {
  /* Binary headers (-bin) are compared as hex of their decoded bytes. */
  if (key.endsWith('-bin')) return Buffer.from(v).toString('hex');
  return String(v);
}

function mdPairs(md) {
  const out = [];
  if (!md) return out;
  const map = md.toJSON();
  for (const key of Object.keys(map).sort()) {
    for (const v of map[key]) out.push([key, mdValue(key, v)]);
  }
  return out;
}

/* ---------------------------------------------------------------- server */

function serve(args) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const impl = {
    Echo(call, cb) {
      const req = call.request;
      const t = setTimeout(() => cb(null, {text: req.text, payload: req.payload}),
          req.delay_ms || 0);
      call.on('cancelled', () => clearTimeout(t));
    },
    async Count(call) {
      const req = call.request;
      let cancelled = false;
      call.on('cancelled', () => { cancelled = true; });
      for (let i = 0; i < req.count && !cancelled; i++) {
        if (req.delay_ms) await sleep(req.delay_ms);
        if (cancelled) return;
        call.write({text: `${req.text}-${i}`, index: i, payload: req.payload});
      }
      if (!cancelled) call.end();
    },
    Chat(call) {
      let i = 0;
      call.on('data', (req) => call.write({text: req.text, index: i++}));
      call.on('end', () => call.end());
    },
    Collect(call, cb) {
      const texts = [];
      call.on('data', (req) => texts.push(req.text));
      call.on('end', () => cb(null, {text: texts.join(','), index: texts.length}));
    },
    Fail(call, cb) {
      const req = call.request;
      if (!req.status) return cb(null, {});
      cb({code: req.status, details: req.status_message});
    },
    Metadata(call, cb) {
      const req = call.request;
      const initial = new grpc.Metadata();
      const trailing = new grpc.Metadata();
      const pairs = [];
      for (const key of req.echo_keys) {
        for (const v of call.metadata.get(key)) {
          initial.add(key, v);
          trailing.add(`trailer-${key}`, v);
          pairs.push({key, value: mdValue(key, v)});
        }
      }
      call.sendMetadata(initial);
      cb(null, {metadata: pairs}, trailing);
    },
  };

  const server = new grpc.Server({'grpc.max_receive_message_length': 16 << 20});
  server.addService(service, impl);
  let creds = grpc.ServerCredentials.createInsecure();
  if (args.cert) {
    creds = grpc.ServerCredentials.createSsl(
        args.ca ? fs.readFileSync(args.ca) : null,
        [{cert_chain: fs.readFileSync(args.cert), private_key: fs.readFileSync(args.key)}],
        !!args.ca);
  }
  const addr = args.unix ? `unix:${args.unix}` : `127.0.0.1:${args.port || 0}`;
  server.bindAsync(addr, creds, (err, port) => {
    if (err) {
      console.error(`bind ${addr}: ${err.message}`);
      process.exit(1);
    }
    console.log(JSON.stringify({ready: true, port, unix: args.unix || null}));
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/* ---------------------------------------------------------------- client */

function payloadOf(n) {
  const b = Buffer.alloc(n || 0);
  for (let i = 0; i < b.length; i++) b[i] = i % 251;
  return b;
}

function requestOf(r) {
  return {
    text: r.text || '', count: r.count || 0, delay_ms: r.delay_ms || 0,
    status: r.status || 0, status_message: r.status_message || '',
    echo_keys: r.echo_keys || [], payload: payloadOf(r.payload_len),
  };
}

function replyOut(rep) {
  const p = rep.payload || Buffer.alloc(0);
  return {
    text: rep.text, index: rep.index,
    metadata: (rep.metadata || []).map((kv) => [kv.key, kv.value]),
    payload_len: p.length,
    payload_sha256: crypto.createHash('sha256').update(p).digest('hex'),
  };
}

function runCase(client, c) {
  return new Promise((resolve) => {
    const started = Date.now();
    const md = new grpc.Metadata();
    for (const [k, v] of c.metadata || []) {
      md.add(k, k.endsWith('-bin') ? Buffer.from(v, 'hex') : v);
    }
    const opts = {};
    if (c.timeout_ms) opts.deadline = Date.now() + c.timeout_ms;
    const reqs = (c.requests || [{}]).map(requestOf);
    const ser = service.Echo.requestSerialize;
    const de = service.Echo.responseDeserialize;
    const out = {name: c.name, replies: [], initial_metadata: [], trailing_metadata: []};
    let call;
    const onReply = (rep) => out.replies.push(replyOut(rep));
    const unaryCb = (err, rep) => { if (!err && rep) onReply(rep); };
    switch (c.kind) {
      case 'unary':
        call = client.makeUnaryRequest(c.method, ser, de, reqs[0], md, opts, unaryCb);
        break;
      case 'server_stream':
        call = client.makeServerStreamRequest(c.method, ser, de, reqs[0], md, opts);
        break;
      case 'client_stream':
        call = client.makeClientStreamRequest(c.method, ser, de, md, opts, unaryCb);
        for (const r of reqs) call.write(r);
        call.end();
        break;
      case 'bidi': {
        call = client.makeBidiStreamRequest(c.method, ser, de, md, opts);
        /* Ping-pong: the next request goes out once the previous reply came. */
        let next = 0;
        const send = () => {
          if (next < reqs.length) call.write(reqs[next++]);
          else call.end();
        };
        call.on('data', () => send());
        send();
        break;
      }
      case 'bidi_burst':
        call = client.makeBidiStreamRequest(c.method, ser, de, md, opts);
        for (const r of reqs) call.write(r);
        call.end();
        break;
      default:
        throw new Error(`unknown kind ${c.kind}`);
    }
    if (c.kind === 'server_stream' || c.kind === 'bidi' || c.kind === 'bidi_burst') {
      call.on('data', onReply);
      call.on('error', () => {});
    }
    call.on('metadata', (m) => { out.initial_metadata = mdPairs(m); });
    call.on('status', (st) => {
      out.code = st.code;
      out.message = st.details;
      out.trailing_metadata = mdPairs(st.metadata);
      out.elapsed_ms = Date.now() - started;
      /* Let a unary callback that runs after 'status' record its reply. */
      setImmediate(() => resolve(out));
    });
  });
}

async function client(args) {
  const cases = JSON.parse(fs.readFileSync(args.cases, 'utf8'));
  let creds = grpc.credentials.createInsecure();
  const options = {'grpc.max_receive_message_length': 16 << 20};
  if (args.ca) {
    creds = grpc.credentials.createSsl(
        fs.readFileSync(args.ca),
        args.key ? fs.readFileSync(args.key) : null,
        args.cert ? fs.readFileSync(args.cert) : null);
    if (args['server-name']) {
      options['grpc.ssl_target_name_override'] = args['server-name'];
      options['grpc.default_authority'] = args['server-name'];
    }
  }
  const c = new grpc.Client(args.target, creds, options);
  for (const cs of cases) {
    const r = await runCase(c, cs);
    process.stdout.write(JSON.stringify(r) + '\n');
  }
  c.close();
}

const args = parseArgs(process.argv.slice(2));
if (args._[0] === 'server') {
  serve(args);
} else if (args._[0] === 'client') {
  client(args).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  console.error('usage: node_peer.js server|client ...');
  process.exit(2);
}
