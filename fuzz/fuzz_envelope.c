/*
 * libFuzzer target for the envelope decoder (pubsub/envelope.c): the bytes a Redis channel
 * hands this process, which anyone who can PUBLISH to Redis controls.
 *
 * Input: the bytes of one message, decoded as they are (a heap copy of exactly them, so
 * reading past the end is an ASan error). The decoder must answer one of its codes and
 * never crash, leak or allocate in proportion to lengths the input merely claims. When it
 * accepts, every field must lie inside the input and obey the format (envelope.h), and
 * encoding what it decoded must give an envelope that decodes to the same fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_check.h"


static int inside(const void *p, size_t n, const unsigned char *buf, size_t len)
{
    const unsigned char *q = p;
    return n == 0 || (q >= buf && q + n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    ps_envelope e, again;
    unsigned char *enc = NULL;
    size_t enc_len = 0;
    int rc;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    rc = ps_envelope_decode(copy, size, &e);
    CHECK(rc <= PS_ENV_OK && rc >= PS_ENV_NOMEM);
    CHECK(strcmp(ps_envelope_strerror(rc), "unknown envelope error") != 0);
    if (rc == PS_ENV_OK) {
        CHECK(inside(e.topic, e.topic_len, copy, size));
        CHECK(inside(e.payload, e.payload_len, copy, size));
        CHECK(e.topic_len >= 1 && e.topic_len <= PS_ENVELOPE_MAX_TOPIC);
        CHECK(e.payload_len <= PS_ENVELOPE_MAX_PAYLOAD);
        CHECK(e.opcode == PS_OP_TEXT || e.opcode == PS_OP_BINARY);
        CHECK(e.seq >= 1);
        CHECK(ps_utf8_valid((const unsigned char *)e.topic, e.topic_len));
        if (e.opcode == PS_OP_TEXT)
            CHECK(ps_utf8_valid(e.payload, e.payload_len));
        /* What decodes re-encodes, and decodes to the same fields. */
        CHECK(ps_envelope_encode(&e, &enc, &enc_len) == PS_ENV_OK);
        CHECK(enc_len <= size); /* the encoder's headers are the shortest */
        CHECK(ps_envelope_decode(enc, enc_len, &again) == PS_ENV_OK);
        CHECK(!memcmp(again.origin, e.origin, PS_ENVELOPE_ORIGIN_LEN));
        CHECK(again.seq == e.seq && again.opcode == e.opcode);
        CHECK(again.topic_len == e.topic_len && !memcmp(again.topic, e.topic, e.topic_len));
        CHECK(again.payload_len == e.payload_len &&
              (e.payload_len == 0 || !memcmp(again.payload, e.payload, e.payload_len)));
        free(enc);
    }
    free(copy);
    return 0;
}
