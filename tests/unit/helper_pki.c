/*
 * helper_pki: the in-memory test PKI (see helper_pki.h for the contract).
 * Built directly on OpenSSL's X509 and X509V3 APIs; every failure ends the
 * running test through cmocka.
 */
#include "helper_pki.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ERR_print_errors_fp(stderr);                                                           \
            fail_msg("helper_pki: %s failed (%s:%d)", #cond, __FILE__, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A fixed 9216-bit RSA key (generated with `openssl genpkey` for these
 * tests; not used anywhere else). */
static const char rsa9216_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIUggIBADANBgkqhkiG9w0BAQEFAASCFGwwghRoAgEAAoIEgQDVTr8ya6fG/J+8\n"
    "GukalifR1gNnK8I15HrNjwGFg8ifCTsDS7BdU3xMNyUAzDpwMUubn7yzMOZ/ECji\n"
    "lX4/RNwRjtwS7ZsraaGSpWzm4+qlFNAPgsS4V5Adu8ks819HAorZZn3tJYImmgFy\n"
    "Ptd5JAUjROpy8LYYVdS83SZY69G9OEZ/RnSXpm0aSBdvaj/EH9hFT9yvohJPta3G\n"
    "VpAnmlfhvIu6dDEJuOnm9KvJbDBZjBy3iwF5edKkC+UvJCglMEi+tmXsSIsfn0wa\n"
    "8NG+U4CeDHe2HtOmGWUoJeQMiEPS3H74IIqzGQdPnLT4M2yN/xuEOsXAA+BAsJc4\n"
    "5tCWEJmEk/CV5L9KJ32akbFRMDkXYzi7mewqyNVd9uOFvgFeMcywxUdW2HnCU1aC\n"
    "eqt6v/MAY6zJDK8tLMjpY94xGTSPDE7jEOo8gREn6LSOT5HqMirTkbZapxRlQrAQ\n"
    "PI2CIGQYTVdfT1gAj9ycUhuAxM1GJDvLQ2okgiO8CYNLta0ipa7KsgSS44A2rIjY\n"
    "3hOzSgSTYdVBiTnhQCLNv451e2Fs4dk9mBZoINYseGyHwKNzW/XLozt10MpyR/hK\n"
    "OOJ2yG+3l+GPQxsdJvwzAW6g4U2I3UOrRLZoDxCezs5A56dHgnWmFaOYRe6SLqSf\n"
    "CcpYNCD9IOZDQx/0gwvSyhAVHXmLLgMsDL/mVVNZpU9rUwPYGdN1RjRwHvIYXU7N\n"
    "RMHJ3jRi8PDx9t5qJqzK7zA4yYBsXL0Q58yD4eD1Ns+wIJiRP8bOT0PKlLIC5xCt\n"
    "ihOIJ6CS53oQVQ5jp47uUC+k72Odeh0MNe6UAVDqrPKxfs51u2LMe1m7KFj75pNL\n"
    "Hg1IS48Eu/vhggMfrXqTnIz7shf/a1YeWbG7do57kPBHzHeG1aJYrJdFBOmpvXnU\n"
    "n7YTBFiBfnR8JeTB/Ida5XoKYvHMWruF43a6Q833JFqIxbntfEoM2yYhaBSX9d5z\n"
    "+/j63DJKvw2WwVi7CHxDRmTaJubXnwjVb9BXdwzf8/pMnJ6FBX/6g0hd/m5szB/6\n"
    "QpYyAWGIuWmUuZJXOsdJU8oMYXmhmwN4CxZxH9lZjmGKa3vhGZmfbwQoJJ8v5Bji\n"
    "q/ecdKBQO51hntVRIGY8U+uMX7CdOO9K+ekcl6JxlOskuTmKxfpNGdeOLrj/5nKz\n"
    "Hdc684UGFI4tdbGHdr5hEg94vEpTxljNcP8ZA86Uni+8d1cTOoE8CGythr4Dreqd\n"
    "kQhcBjnNILk0ZlShcQTSoV3Lh1thKdZ5azp2EnfOhBzS8M1q4RNNOxEYabFCwDIP\n"
    "0qGgj4XGZ4o/JLoeyRZy4Fn+vOkQCxjes1374vCiEitb6CbH4V+/YvSmlTLchpni\n"
    "2UNeszDSeO/rS5uMeHR0Xc1bhl0FRjTUooCRDKRViZFmqN/Uck3YPApxwR6Cmj1g\n"
    "B7MvirlA/WhZkC7q3WQn8YQhDgZZjyMA+b+j7fCbBDDfDx94PxVDmNxgv0NRgknk\n"
    "DWsKrjfAaAhi/m7+vU4kKrVc0gxkKcbP10e+VbtK73gJEH4MyZECAwEAAQKCBIAV\n"
    "MPUSvm+VImeAybr1yWFxryLNvvhU3/remBdNGzS1BAw+Ur3V5Q44s350Gqta67LO\n"
    "EQEEsQDSh8RKumen7nXfMq5Pcmvo1LODZ6GEO16w1s/9cn7hAiX5pjx2wEOWFj0S\n"
    "xbll9Bopg+xNMXa4/L3xQo6jgPbTlRdaSgLeG6jNynJKgQaNQwXyHKO4uGQBs9jf\n"
    "De+Sl/XcwGO1YXKB1LYStudkzIKgq3kQA6ewuOmsGRzd6SvqKb2mTt45IDeddjNh\n"
    "QFVWM4t1cUnKIA7zqxpgg+7oA3OrETkjqMaurgzwPQ1KJlAmjyp9m3JpJBFj9qpW\n"
    "U9EYjJSx/ePleHIpg8L/UQPk8wGZYtykx1ZH3BQX7Di909gKv21fH+t7pSQ/+4+R\n"
    "J5A4+FmkV3Yv5p2e8hnjTy5ibOWsWxd8rvoV2PddQhpGOa8joqjrKkBh0QA3NZOx\n"
    "Ss0Z1XZ+bDEknndqgZWgH8g52klCXl3K6Tyn6Xqr6LvzViJh4ndICOPn2MfiD3a9\n"
    "gWZYl3cXN23YVGZoTfFaw6yVjbCtMvDM4vvKqnQZMUN3+IzlUbnQAjNktdvR1prP\n"
    "3SAc9Mi1W3a3HPlMAV6ul81bV7iGXWdPGT8ohtRBRXDMajpQPTWSqWCulwpfMtPw\n"
    "U5RZ85H0043G6l3qrwcbTrJBkBYedbRuKmU4S8zVlGp77P+q6OLWdEi0agi8O9iY\n"
    "/TKxdDRAp73FQSWazKivWa4o7l8rSZCqD+LeXrpo9DpTnHZiIHB3vAxxvCicFCtE\n"
    "EL7EdQGuDvDYTwJroUoS2jzNOxs2TeCcvHXMz4TYgVgBIhQJsHiQLyu8ri5sAVqZ\n"
    "qJHenk9mo9cdPTwcKCifO5t5Rg3dTa7Etp3g5OTjPYdbXkESWqo5zJ7sWqj8AUNk\n"
    "3dt6RzxCdq8wDMB/6TIWIkvRyqPXLRHdJY35/UYH3iuKaUZOcT2RUm5LdXPxWehG\n"
    "FgmhJexBuvBY975ay4NsXSpW67zj3luzAVeAyBslCzXwtMCtM5ltpcCRY1qAYzen\n"
    "XBtDdbNNTaGdVjqSZCpurckZFuA10UBPPpAaSxdUvO0xjaNh9AcO8hBc1DXh/JUo\n"
    "qQkYwLOoVJomqDbfhL2kPSleNSAdjr5aVkIcwAp9ZdP5LYvGqJDMUSoAAV76rzJB\n"
    "sGl8bpoF68pndYlp1962qs8E+YsSyZEwftprAg58mdRysMJnrTETAETHlZL5uyYI\n"
    "nHamnH/04Z/UqW3ekn+EgGeQC+usgrQdNowUgfnO0XOce8rcDxOfhVLr0jYjrRF8\n"
    "0HrO3YvYF4VAUNDo/pD4t7RdaGQI9F9k5vUTukcpayA2mZaBo7w8HSO1ZHA0vlyM\n"
    "ow6q1oYvQToGYcgpwqAelXadjMGDKMKpFBYY0TTM9SznYl0aoN1Uz7DJFJQIE6ij\n"
    "4jc6qlye7SQmDKO+16+FYQeRdHhQa4DZ6Q7ki5HIXW42PLTzEsejbIVivSTtP6Rd\n"
    "aKQ1D/Nt3UunhfWCIQ77icM1lp3Roh3AsiY43vGSiTEkqBoDy8j5rn1WRVwNea8C\n"
    "ggJBAPUogTnidKJfgIGpWEc7aaYhNf92OQlZSe4511gaCsDxfTdP1pqmCcQZU95M\n"
    "JX7Pcw3VtnedLNdhanP3CLvpo3h+W2NYgXZNc0PjszFqa1VKuiQOocn7qkSMbpIe\n"
    "KMrbyqvROXrNYbFJjRyaFztr8tEwL9m34bkCcTDLcJoz6XANIW17wi/B/gyRGmqZ\n"
    "egogPHuYYfupd2b+f8zu4HRONwsd82tV1iqaV713omskXi9+GzHIvAoEIqV0k7Wr\n"
    "2PXYDEzLo7flNO8qHfWW2aqLTnICQJHXKHP0pBxvJz8CDHDUW1rfzrf3n/evL+Ee\n"
    "8x12RdpSMtiyVaBUHmqMI/5aRVFQdinHDTJ2PaVyxOxEGI/Paa7wP82cRSN+GRUb\n"
    "akWP3utRJhX3yk4B97OeA5RiFpxJFKpSOiVc5FL4nj8KzfWzmSSkbKK2BIaN8BM8\n"
    "LS3jq72k+KbVJwSC+jUqyGkD7SBYOfhzGECvLJURz+DcC5q7cI2U07+5Mj0uuY5G\n"
    "bRleezT29iVfoOp+yB8jtUFJLwiFk/cy/7IfvjfDxnO2JZ+vA1ehmxXItOsss9en\n"
    "/z0iS4GUOny0JXGnnyWQtfuU4ubL8XLsF7zhAr8/OP8MnzbPQu2SJNs4LYvbQdAw\n"
    "DcYJEoYKmNZOIw0lEzqFtXgzeHHLJKPvmDgvHBPWDClitJ4CcUBoLJRBQ5BXbDpv\n"
    "6UUQjdM+ed4dWgRJYPUWvFPOKOF/HUnR6E+tPMU85GJ70nXRPWLxhqbm3BhS/HTL\n"
    "QxwiiwKCAkEA3r2nUNF0Jw2r15wT8FmDeunxH6ARvL59Tq7r0+onY/sA0CT9rBMV\n"
    "sA9J4Bq0QUAEJpz0JHEVXaJ+o1r/OZKPWUzmnCeqihafoY5gP3W0vvM7MqVtK86h\n"
    "pH6YxyKiAx01GUusoegPKU8aW+0JnQCPZK4aiI2FWi/8I8tQsh5Y89txTHAky4hO\n"
    "VM1kaelMsbZHYT1uE8RkIHAin14D0OfX2mRsxOEZ5i6UqNbfPI8pUl3ExTXgsrKi\n"
    "CsUyXkxD17t4hLKDg2n5xiconHY2sgPJmCiPBDWOHokw7JJ1YZkb+iUmUot2tmiH\n"
    "saHiJ+JFy8qgosJ8KqiDC0ULIwsJ69NkLXXfjsVmhB0LvuOLdyajxZphhVs+ZFNF\n"
    "Qm0MRdYCpSZKNysl3DZxUznctz8MCff8gSE8P6ANsz5VkSRD1kGfi5lNnsBhI4vn\n"
    "UFk4bPKVt2jdTSrr91Bj8GTIQHRAsj4YAB+ARYFdnKHDEFm/bitu/U3OLaemg2t+\n"
    "27vgD7DilkIIRStyiDwYf36nJZJFP08sgigXR0dkxh9i8OwfePBUZpCCywOW04jM\n"
    "AiAQ2mz7HF5XtNyMi2IGUOJ0aiGSe+DIAuCXrS8GhHY0/EpXYZGNEhMh4EcDIZkl\n"
    "bgHyARdMWio24FgGQ6VkJB9VraiO3P+EmyR3L3FgIkuRH6oDvHZ0eT4gD9bQiDsd\n"
    "NgZCYb7baOpF8cPY3aZhhTySh8QmUCASXBry3qXUQdLkT933p2m0XxiVdoViDFiv\n"
    "a3Yjq87rZBPTAoICQFcLM56+xdSk/faLjvlzodZHcmmqqyOjnTlFNi1kya6pz2Cl\n"
    "Kzgrfcovh/Skqqd0tpAR8kBUAQjT4L0d1+8ITG9Kxd3nHchIRYW0Qfpoo4VcC+0j\n"
    "eNRDU7gU+GlO5gLouPP6TGNKqsYMrFqcZ2VEtakKZ+Lwg+dxc4j0op1NkzOipdy+\n"
    "lTrpsO77UhrJNWiE+5SSjS+Sgv+BmxTDN9RztN1wm+3fQzRLKp3t7TAHcJ2CM9ug\n"
    "Pwt7XmXKl2togZcAR5W4s/9mFT5ZgNui3NPNtGOMYyqk7wsEsIQb/x5C9vHUpD8G\n"
    "udndxOFnRSO0HnO2e6TBjKYd44MSet4vtdPobzYo0FuS/h+NleO5dSvCHcppxUdE\n"
    "rBKvymiIrBUvb7MVGvwICvK/0QeTcURH9VNo5EhHNlwm59g+PB8tgNo3VttHEjfN\n"
    "XXkEEWVI3hWmRxBFBsRF37c0dS8H5hicgR2wNDBIwwRwsQq+Z6Dh+yIGXuRoatUK\n"
    "I4iuE6Vfgqh+XtwkDLDIgqrQYk0ACMPtpLxyZI2tB9U8OUcgOCSKkVqiMIea1x/1\n"
    "FCBO69WYQJ5wWpJ1K8PtQjrmp2jMMBhhYgvaWBnEDY1VQDRi29vVccI01A7c1hGN\n"
    "0yI2tw0yIxLtDObkb7xB5PQqOA3BvSsJMF5mP/x/ORovxqckKt7sH9NN5X04tsc8\n"
    "dZ+J8Jg+QgIZnARWlVSMmS6A02Y0O4WpteI3j5JI1LhSHB62Dp6lOR2ygw4r5ZTM\n"
    "1pdJ3pmQVWyOgtxpcwKCAkEArEGpcpP5KvakrcLTnK3tQ5JGWnnVHc2HZOFcGe/c\n"
    "9LI6B76Du56qyBSawkiEnG2giCgbm08lAdvX6gdGmESivaH+Okdm2RHz8+ICxzEF\n"
    "TiMW5e0PR7CuS2NoTaCYAKaG2QAwCqpHh1/Yd70SESxMuMT4WiBwP7YaXagvyQA1\n"
    "NKnBriaQHiNUyLpq7IlzOYBJJYd3aKwZ7wgpjmwLsXSK9ydxArU+7UeayhQaYmAo\n"
    "yb0gno8zLZ9+N6wXbtu2H9Gou56+nFPJyZehDZdSZ0sMjbLYH543QaBBiMMfKhJZ\n"
    "k5NFVtLqRNkED7itCMExzw/uONEFa4wUhBOqMDiqPImn0Ix3DpfU11kLK14YDlaA\n"
    "kyH4R0SwNLA9QMjKk/uU4hmBjba9udcUvxNhgQmuCsuQqGCGkoH59mO/ktaj67+m\n"
    "XjR51crblLzub7IANClK5aOgebw27nVqRI/8WfRN0Eq7DuVNsvL/7VEgZLWzmMTY\n"
    "OecBC0e7O6lXWyGpfxkBsshwUuXt1jP7kiXlp+W9zd8yAZp1njc1VQ8S2lURZdse\n"
    "uo8Jx20IKKGDfCVGQ1XCwUaot4NU4bo2PjlTZHyAJ3NH2wnL4zAZ7zjnczEe8KK6\n"
    "oX7QVP02C7a/PpsciAF3l8dL1yXb+lae4lylSv6vNXQaHk0OK0+X1A3ytrUp3IcT\n"
    "PmxwKS+s554n0g73KVaLolCDNRyLy6aPhpW4kGx+YLrc2AQzTUKbqygoTyfPDdZu\n"
    "mpiNhjJTCE9Rol6j6YvFeQjnAoICQFGYqizTPWDDoK3Bji3LZu8gyR9FKEKPKFz/\n"
    "OG/Pc2Rt9GmknnR0wPb8YPn4ACVFKb8Cqk5mnCsg2+ROkt2jFOpzzzkPvORUjY7q\n"
    "SZRF0lPbq79je9CCPAc/xTI+T6w+QZl/jqh7B5AXgrMraheJ4E501bkgqsHBdaE4\n"
    "aG/4Y3+jhUlgNBF8ECZEV9vdSp6gXSFzi0E8OoE2OX5ZFKmKJZH0TkiVPqG5bkcu\n"
    "fEt1bNSVb+lro2EOEHazjTPua7rxfIv48VgT6HvoSAaWyR8JQzmV8feXa7Pkx5CK\n"
    "9ARQJiFp7OS8wIJvF0NFxpxPbio3SNxCT7X44MeE3rQ6TUZaKY6/6/mTiyMhYvqZ\n"
    "CP5JubinPffCZTeA4mOzcq6Oxonbc4MqXfMtNSxPqPek98UkA/qN7C0aDLzU1pOt\n"
    "2sJuYSRHXGVQbGM5/c/X5yFCcfYE+mu0gN8FPB3BWZuIco25o5XWWz00ovIonH+S\n"
    "C2UarFY+di5kawZM2wm2+eDHjkHvrAACh9fwTeRyIr2W5kDGdDRxma8s01nAY9CJ\n"
    "pMRDycnWSmKQfdfZRnFlUqQvjrHQCANYAHKOaQDzwwlGnyZWGV8+CgHo4vh8hDlU\n"
    "AAgMGreQ0JDydav897nYkSKrTGiZ3H/wzoaiMC6XfK3elyRyHDX5/cAfPu5MaJNj\n"
    "DgDnsU5C4LiYBFNCJzhFK3wXb9OKRGGRxsa/YIx9FwtepjwJRU/ATrl9j87cLuhE\n"
    "Y3IGCJ9tBY0EOvMlZwKFSx/joZ62Eg==\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *cache[8][2][16];

static EVP_PKEY *generate(enum hp_key_type type, int rsa_bits)
{
    EVP_PKEY *key = NULL;

    switch (type) {
    case HP_EC_P256:
        key = EVP_EC_gen("P-256");
        break;
    case HP_EC_P384:
        key = EVP_EC_gen("P-384");
        break;
    case HP_EC_P521:
        key = EVP_EC_gen("P-521");
        break;
    case HP_EC_SECP256K1:
        key = EVP_EC_gen("secp256k1");
        break;
    case HP_RSA:
        if (rsa_bits == 9216) {
            BIO *b = BIO_new_mem_buf(rsa9216_pem, -1);
            CHECK(b != NULL);
            key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
            BIO_free(b);
        } else {
            key = EVP_RSA_gen((unsigned int)rsa_bits);
        }
        break;
    case HP_ED25519:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    }
    CHECK(key != NULL);
    return key;
}

EVP_PKEY *hp_key_fresh(enum hp_key_type type, int rsa_bits)
{
    return generate(type, rsa_bits);
}

EVP_PKEY *hp_key(enum hp_key_type type, int rsa_bits)
{
    int slot = type == HP_RSA ? (rsa_bits / 1024) % 16 : 0;
    EVP_PKEY **k = &cache[type][rsa_bits % 1024 != 0][slot];

    /* The 9216 key is fixed, so only RSA sizes that are multiples of 1024
     * share slots predictably; others are regenerated on a clash. */
    if (*k != NULL && type == HP_RSA && EVP_PKEY_get_bits(*k) != rsa_bits) {
        EVP_PKEY_free(*k);
        *k = NULL;
    }
    if (*k == NULL)
        *k = generate(type, rsa_bits);
    CHECK(EVP_PKEY_up_ref(*k) == 1);
    return *k;
}

static void set_serial(X509 *x, const char *hex)
{
    static unsigned long counter = 0x1000;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai;
    char buf[32];

    if (hex == NULL) {
        (void)snprintf(buf, sizeof(buf), "%lx", ++counter);
        hex = buf;
    }
    CHECK(BN_hex2bn(&bn, hex) > 0);
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    CHECK(ai != NULL);
    CHECK(X509_set_serialNumber(x, ai) == 1);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK(ext != NULL);
    CHECK(X509_add_ext(x, ext, -1) == 1);
    X509_EXTENSION_free(ext);
}

static void add_sans(X509 *x, const struct hp_cert_opts *o)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

    CHECK(gens != NULL);
    for (size_t i = 0; i < 8 && o->uris[i] != NULL; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        CHECK(g != NULL && s != NULL);
        CHECK(ASN1_STRING_set(s, o->uris[i], (int)strlen(o->uris[i])) == 1);
        GENERAL_NAME_set0_value(g, GEN_URI, s);
        CHECK(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    if (o->dns != NULL) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        CHECK(g != NULL && s != NULL);
        CHECK(ASN1_STRING_set(s, o->dns, (int)strlen(o->dns)) == 1);
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        CHECK(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    if (sk_GENERAL_NAME_num(gens) > 0)
        CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1);
    GENERAL_NAMES_free(gens);
}

static void add_unknown_critical(X509 *x)
{
    static const unsigned char null_der[] = {0x05, 0x00};
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55555.7.1", 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;

    CHECK(obj != NULL && data != NULL);
    CHECK(ASN1_OCTET_STRING_set(data, null_der, sizeof(null_der)) == 1);
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, data);
    CHECK(ext != NULL);
    CHECK(X509_add_ext(x, ext, -1) == 1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(data);
    ASN1_OBJECT_free(obj);
}

static X509_NAME *make_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    CHECK(n != NULL);
    CHECK(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"anchor-tests",
                                     -1, -1, 0) == 1);
    if (cn != NULL)
        /* A plain UTF8String type (not MBSTRING_*) lets "" through. */
        CHECK(X509_NAME_add_entry_by_txt(n, "CN", V_ASN1_UTF8STRING, (const unsigned char *)cn,
                                         (int)strlen(cn), -1, 0) == 1);
    return n;
}

X509 *hp_cert(const struct hp_cert_opts *o, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    X509_NAME *subject = make_name(o->cn);
    time_t now = time(NULL);
    const EVP_MD *md;
    char bc[64];

    CHECK(x != NULL);
    CHECK(X509_set_version(x, X509_VERSION_3) == 1);
    set_serial(x, o->serial_hex);
    CHECK(X509_set_subject_name(x, subject) == 1);
    if (o->issuer_name != NULL) {
        X509_NAME *in = make_name(o->issuer_name);
        CHECK(X509_set_issuer_name(x, in) == 1);
        X509_NAME_free(in);
    } else {
        CHECK(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : subject) ==
              1);
    }
    CHECK(ASN1_TIME_set(X509_getm_notBefore(x), o->not_before != 0 ? o->not_before : now - 3600) !=
          NULL);
    CHECK(ASN1_TIME_set(X509_getm_notAfter(x),
                        o->not_after != 0 ? o->not_after : now + 30 * 86400) != NULL);
    CHECK(X509_set_pubkey(x, key) == 1);
    if (o->bc == HP_BC_DEFAULT) {
        if (o->ca && o->has_pathlen)
            (void)snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", o->pathlen);
        else
            (void)snprintf(bc, sizeof(bc), "critical,CA:%s", o->ca ? "TRUE" : "FALSE");
        add_ext(x, issuer, NID_basic_constraints, bc);
    }
    if (o->ku == HP_KU_DEFAULT)
        add_ext(x, issuer, NID_key_usage,
                o->ca ? "critical,digitalSignature,keyCertSign,cRLSign"
                      : "critical,digitalSignature");
    else if (o->ku == HP_KU_NO_DIGSIG)
        add_ext(x, issuer, NID_key_usage,
                o->ca ? "critical,keyCertSign,cRLSign" : "critical,keyEncipherment");
    else if (o->ku == HP_KU_NO_CERTSIGN)
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (o->eku != NULL)
        add_ext(x, issuer, NID_ext_key_usage, o->eku);
    if (o->eku_empty) {
        EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
        CHECK(eku != NULL);
        CHECK(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1);
        sk_ASN1_OBJECT_free(eku);
    }
    add_sans(x, o);
    if (o->unknown_critical)
        add_unknown_critical(x);
    if (issuer == NULL)
        issuer_key = key;
    md = EVP_PKEY_get_base_id(issuer_key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    CHECK(X509_sign(x, issuer_key, md) > 0);
    X509_NAME_free(subject);
    return x;
}

void hp_pki_init(struct hp_pki *p, enum hp_key_type leaf_type, int rsa_bits)
{
    struct hp_cert_opts ro = {.cn = "Test Root CA", .ca = 1};
    struct hp_cert_opts io = {.cn = "Test Intermediate CA", .ca = 1};
    struct hp_cert_opts lo = {.cn = "node-1.example.org", .serial_hex = "3a7f2c1b"};

    p->root_key = hp_key_fresh(HP_EC_P256, 0);
    p->inter_key = hp_key_fresh(HP_EC_P256, 0);
    p->leaf_key = hp_key(leaf_type, rsa_bits);
    p->root = hp_cert(&ro, p->root_key, NULL, NULL);
    p->inter = hp_cert(&io, p->inter_key, p->root, p->root_key);
    p->leaf = hp_cert(&lo, p->leaf_key, p->inter, p->inter_key);
}

void hp_pki_cleanup(struct hp_pki *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->inter_key);
    EVP_PKEY_free(p->leaf_key);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf);
    memset(p, 0, sizeof(*p));
}

static char *bio_string(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);

    CHECK(n >= 0 && s != NULL);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

char *hp_pem_certs(X509 *const *certs, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());

    CHECK(b != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK(PEM_write_bio_X509(b, certs[i]) == 1);
    return bio_string(b);
}

char *hp_pem_block(const char *label, const uint8_t *der, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());

    CHECK(b != NULL);
    CHECK(PEM_write_bio(b, label, "", der, (long)len) > 0);
    return bio_string(b);
}

uint8_t *hp_der(X509 *cert, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    uint8_t *out;

    CHECK(n > 0);
    out = malloc((size_t)n);
    CHECK(out != NULL);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

uint8_t *hp_der_chain(X509 *const *certs, size_t n, size_t *len)
{
    uint8_t *out = NULL;
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        size_t l;
        uint8_t *d = hp_der(certs[i], &l);
        out = realloc(out, total + l);
        CHECK(out != NULL);
        memcpy(out + total, d, l);
        total += l;
        free(d);
    }
    *len = total;
    return out;
}

char *hp_pem_key(EVP_PKEY *key, enum hp_key_format f)
{
    BIO *b = BIO_new(BIO_s_mem());
    OSSL_ENCODER_CTX *ectx;

    CHECK(b != NULL);
    switch (f) {
    case HP_PKCS8:
        CHECK(PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1);
        break;
    case HP_PKCS1:
    case HP_SEC1:
        ectx = OSSL_ENCODER_CTX_new_for_pkey(key, OSSL_KEYMGMT_SELECT_KEYPAIR, "PEM",
                                             "type-specific", NULL);
        CHECK(ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0);
        CHECK(OSSL_ENCODER_to_bio(ectx, b) == 1);
        OSSL_ENCODER_CTX_free(ectx);
        break;
    case HP_PKCS8_ENCRYPTED:
        CHECK(PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_256_cbc(), "test", 4, NULL, NULL) == 1);
        break;
    case HP_PKCS1_ENCRYPTED:
        CHECK(PEM_write_bio_PrivateKey_traditional(b, key, EVP_aes_256_cbc(),
                                                   (unsigned char *)"test", 4, NULL, NULL) == 1);
        break;
    }
    return bio_string(b);
}

char *hp_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);

    CHECK(dir != NULL);
    (void)snprintf(dir, 4096, "%s/anchor-test-XXXXXX", base != NULL ? base : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    return dir;
}

void hp_tmpdir_remove(char *dir)
{
    DIR *d;
    struct dirent *e;

    if (dir == NULL)
        return;
    d = opendir(dir);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char path[4096];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            (void)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(dir);
    free(dir);
}

char *hp_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = malloc(4096);
    FILE *f;

    CHECK(path != NULL);
    (void)snprintf(path, 4096, "%s/%s", dir, name);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(len == 0 || fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
    return path;
}

char *hp_write_text(const char *dir, const char *name, const char *text)
{
    return hp_write_file(dir, name, text, strlen(text));
}
