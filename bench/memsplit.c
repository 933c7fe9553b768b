/*
 * memsplit: an LD_PRELOAD library that says which C code holds the heap, for bench/run's
 * idle workload (how much of a connection's memory is this project's C, libwebsockets'
 * and zlib's, as opposed to Python's, which tracemalloc counts).
 *
 *   cc -O2 -shared -fPIC -o bench/build/memsplit.so bench/memsplit.c -ldl
 *   LD_PRELOAD=bench/build/memsplit.so python app.py
 *
 * Every malloc, calloc, realloc, strdup and strndup is attributed to the shared object
 * that called it (the return address), and the live blocks of the tracked ones are kept
 * in a table so that a free from anywhere subtracts them again. A block counts
 * malloc_usable_size() plus the 8-byte chunk header glibc puts before it: what it takes
 * from the heap. The tracked objects are found when memsplit_rescan() is called (after the
 * extension module is imported): a file name containing "_gateway" is this project,
 * "libwebsockets" libwebsockets, "libz." zlib. Blocks allocated before that are not
 * counted, which is fine for differences taken afterwards.
 *
 *   long memsplit_bytes(int which)   live bytes: 0 this project, 1 lws, 2 zlib
 *   long memsplit_blocks(int which)  live blocks, likewise
 *   int memsplit_rescan(void)        finds the objects again; returns how many it tracks
 *   long memsplit_sites(const char *path)
 *                                    writes the live tracked blocks grouped by the code that
 *                                    allocated them, one line per (caller, block size):
 *                                    "which object offset bytes count", offset being the
 *                                    return address inside the object (addr2line -f -e
 *                                    object offset names the function); returns the lines
 *                                    written, or -1
 *
 * Reached through ctypes (ctypes.CDLL(None).memsplit_bytes). Only for measuring: a lock
 * is taken on every allocation.
 */
#define _GNU_SOURCE
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define WHICH 3
#define MAX_RANGES 32
#define TABLE_BITS 22 /* 4M slots: far more than the live blocks of 20,000 connections */
#define TABLE_SIZE ((size_t)1 << TABLE_BITS)

typedef struct {
    uintptr_t lo, hi;
    uintptr_t base; /* the object's load address */
    const char *name;
    int which;
} range;

typedef struct {
    uintptr_t ptr; /* 0: empty */
    uintptr_t caller; /* the return address of the allocating call */
    uint32_t bytes;
    uint32_t which;
} slot;

static range ranges[MAX_RANGES];
static volatile int nranges;
static slot *table;
static long live_bytes[WHICH], live_blocks[WHICH];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int which_of(uintptr_t addr)
{
    for (int i = 0; i < nranges; i++)
        if (addr >= ranges[i].lo && addr < ranges[i].hi)
            return ranges[i].which;
    return -1;
}

static size_t slot_of(uintptr_t p)
{
    return (size_t)((p >> 4) * UINT64_C(0x9E3779B97F4A7C15) >> (64 - TABLE_BITS));
}

static void remember(void *p, int which, uintptr_t caller)
{
    uintptr_t u = (uintptr_t)p;
    size_t i;

    if (p == NULL || which < 0 || table == NULL)
        return;
    pthread_mutex_lock(&lock);
    for (i = slot_of(u); table[i].ptr != 0; i = (i + 1) & (TABLE_SIZE - 1))
        ;
    table[i].ptr = u;
    table[i].caller = caller;
    table[i].bytes = (uint32_t)(malloc_usable_size(p) + sizeof(size_t));
    table[i].which = (uint32_t)which;
    live_bytes[which] += table[i].bytes;
    live_blocks[which]++;
    pthread_mutex_unlock(&lock);
}

/* Linear probing with backward-shift deletion: no tombstones to fill the table. */
static void forget(void *p)
{
    uintptr_t u = (uintptr_t)p;
    size_t i, j;

    if (p == NULL || table == NULL)
        return;
    pthread_mutex_lock(&lock);
    for (i = slot_of(u); table[i].ptr != 0 && table[i].ptr != u; i = (i + 1) & (TABLE_SIZE - 1))
        ;
    if (table[i].ptr == 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    live_bytes[table[i].which] -= table[i].bytes;
    live_blocks[table[i].which]--;
    table[i].ptr = 0;
    j = i;
    for (;;) {
        size_t home;
        j = (j + 1) & (TABLE_SIZE - 1);
        if (table[j].ptr == 0)
            break;
        home = slot_of(table[j].ptr);
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            table[i] = table[j];
            table[j].ptr = 0;
            i = j;
        }
    }
    pthread_mutex_unlock(&lock);
}

static int add_object(struct dl_phdr_info *info, size_t size, void *data)
{
    const char *name = info->dlpi_name;
    int which;

    (void)size;
    (void)data;
    if (name == NULL)
        return 0;
    if (strstr(name, "_gateway") != NULL)
        which = 0;
    else if (strstr(name, "libwebsockets") != NULL)
        which = 1;
    else if (strstr(name, "libz.") != NULL)
        which = 2;
    else
        return 0;
    for (int i = 0; i < info->dlpi_phnum && nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        ranges[nranges].lo = info->dlpi_addr + ph->p_vaddr;
        ranges[nranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        ranges[nranges].base = info->dlpi_addr;
        ranges[nranges].name = name;
        ranges[nranges].which = which;
        nranges++;
    }
    return 0;
}

int memsplit_rescan(void)
{
    if (table == NULL) {
        void *t = mmap(NULL, TABLE_SIZE * sizeof(slot), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (t == MAP_FAILED)
            return -1;
        table = t;
    }
    nranges = 0;
    dl_iterate_phdr(add_object, NULL);
    return nranges;
}

long memsplit_bytes(int which)
{
    return which >= 0 && which < WHICH ? live_bytes[which] : -1;
}

long memsplit_blocks(int which)
{
    return which >= 0 && which < WHICH ? live_blocks[which] : -1;
}

#define CALLER ((uintptr_t)__builtin_return_address(0))

static const range *range_of(uintptr_t addr)
{
    for (int i = 0; i < nranges; i++)
        if (addr >= ranges[i].lo && addr < ranges[i].hi)
            return &ranges[i];
    return NULL;
}

typedef struct {
    uintptr_t caller;
    uint32_t bytes;
    long count;
} site;

long memsplit_sites(const char *path)
{
    enum { SITES = 1 << 14 };
    site *sites;
    long lines = 0;
    FILE *out;

    if (table == NULL)
        return -1;
    sites = mmap(NULL, SITES * sizeof(site), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sites == MAP_FAILED)
        return -1;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        if (table[i].ptr == 0)
            continue;
        size_t h = (size_t)((table[i].caller ^ (uintptr_t)table[i].bytes << 48) *
                            UINT64_C(0x9E3779B97F4A7C15) >> 50);
        for (int probes = 0; probes < SITES; probes++, h = (h + 1) & (SITES - 1)) {
            if (sites[h].count == 0) {
                sites[h].caller = table[i].caller;
                sites[h].bytes = table[i].bytes;
            } else if (sites[h].caller != table[i].caller || sites[h].bytes != table[i].bytes) {
                continue;
            }
            sites[h].count++;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    /* Written after the lock is let go: stdio allocates, and this library counts that. */
    out = fopen(path, "w");
    if (out != NULL) {
        for (size_t h = 0; h < SITES; h++) {
            const range *r = sites[h].count ? range_of(sites[h].caller) : NULL;
            if (r == NULL)
                continue;
            fprintf(out, "%d %s %#lx %u %ld\n", r->which, r->name,
                    (unsigned long)(sites[h].caller - r->base), sites[h].bytes, sites[h].count);
            lines++;
        }
        fclose(out);
    }
    munmap(sites, SITES * sizeof(site));
    return out != NULL ? lines : -1;
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    remember(p, which_of(CALLER), CALLER);
    return p;
}

void *calloc(size_t n, size_t m)
{
    void *p = __libc_calloc(n, m);
    remember(p, which_of(CALLER), CALLER);
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p;
    forget(old);
    p = __libc_realloc(old, n);
    if (p == NULL && n != 0 && old != NULL) {
        /* The old block is still there: count it again, as the caller's. */
        remember(old, which_of(CALLER), CALLER);
        return NULL;
    }
    remember(p, which_of(CALLER), CALLER);
    return p;
}

void free(void *p)
{
    forget(p);
    __libc_free(p);
}

char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __libc_malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    remember(p, which_of(CALLER), CALLER);
    return p;
}

char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = __libc_malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    remember(p, which_of(CALLER), CALLER);
    return p;
}
