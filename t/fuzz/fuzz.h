/*
 * fuzz: libFuzzer-style entry points of shoal's decoders.  Each file in
 * t/fuzz/ defines one LLVMFuzzerTestOneInput-shaped function under its own
 * name, so that several link into one test program; a libFuzzer build
 * wraps one of them (clang -fsanitize=fuzzer, see doc/membership.md).
 * The functions must survive any input and return 0.
 */
#ifndef SHOAL_T_FUZZ_H
#define SHOAL_T_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int fuzz_swim_wire(const uint8_t *data, size_t size);

#endif
