/*
 * siphash.h: SipHash-1-3 under a per-structure random key, for the tables whose keys
 * clients choose (topic names): nobody who does not know the key can make names collide.
 * Shared by the topic registry (topics.c) and the subscription ledger (ledger.c).
 */
#ifndef PS_SIPHASH_H
#define PS_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

static inline uint64_t ps_rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t ps_load_le64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define PS_SIPROUND                                                            \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ps_rotl64(v1, 13);                                                \
        v1 ^= v0;                                                              \
        v0 = ps_rotl64(v0, 32);                                                \
        v2 += v3;                                                              \
        v3 = ps_rotl64(v3, 16);                                                \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ps_rotl64(v3, 21);                                                \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ps_rotl64(v1, 17);                                                \
        v1 ^= v2;                                                              \
        v2 = ps_rotl64(v2, 32);                                                \
    } while (0)

/* Returns SipHash-1-3 of the len bytes at p under key k. */
static inline uint64_t ps_siphash13(const uint64_t k[2], const void *p, size_t len)
{
    const unsigned char *in = p;
    uint64_t v0 = 0x736f6d6570736575ULL ^ k[0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ k[0];
    uint64_t v3 = 0x7465646279746573ULL ^ k[1];
    uint64_t b = (uint64_t)len << 56;
    size_t whole = len & ~(size_t)7;

    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = ps_load_le64(in + i);
        v3 ^= m;
        PS_SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    PS_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    PS_SIPROUND;
    PS_SIPROUND;
    PS_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Fills key with random bytes; falls back to the clock and an address if the
 * kernel has no entropy to give without blocking. */
static inline void ps_random_key(uint64_t key[2], const void *salt)
{
    struct timespec ts;

    if (getrandom(key, 2 * sizeof(*key), GRND_NONBLOCK) ==
        (ssize_t)(2 * sizeof(*key)))
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    key[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uintptr_t)salt;
    key[1] = (uint64_t)ts.tv_sec * 0xC2B2AE3D27D4EB4FULL ^ (uintptr_t)&ts;
}

#endif
