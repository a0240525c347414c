/*
 * wiresamples.h — sample protocol messages for the codec and transport
 * tests and the fuzz corpus: every message type, with extreme values
 * (maximum integers, negative times, longest paths, empty slices, entry
 * runs with and without hashes).
 */
#ifndef MDREPL_WIRESAMPLES_H
#define MDREPL_WIRESAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Number of samples. */
size_t ws_count(void);
/* Fills m with sample i and returns its type. The slices point into static
 * storage that stays valid until the next ws_sample() call. */
uint8_t ws_sample(size_t i, union w_msg *m);

#endif
