/* common/hash.h - a 64-bit mixing function for the hash tables and hashing of the modules. */
#ifndef COMMON_HASH_H
#define COMMON_HASH_H

#include <stdint.h>

/* The splitmix64 finalizer: every input bit affects every output bit; a few instructions. */
static inline uint64_t hash_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

#endif
