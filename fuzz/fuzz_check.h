/*
 * fuzz_check.h: the fuzz targets' own assertion. An invariant a target checks that does
 * not hold is a finding, so it aborts, which libFuzzer records as a crash with its input.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif /* FUZZ_CHECK_H */
