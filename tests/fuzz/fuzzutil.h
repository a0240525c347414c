/*
 * fuzzutil.h — helpers shared by the libFuzzer targets in tests/fuzz/
 * (see tests/fuzz/README): a scratch directory that lives as long as the
 * fuzzing process, and small file helpers that abort on failure (a
 * failure to set up an input is a bug of the harness, not a finding).
 */
#ifndef MDREPL_FUZZUTIL_H
#define MDREPL_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Creates (once) and returns a scratch directory: under /dev/shm when it
 * is writable (fsync there costs nothing), else under $TMPDIR or /tmp.
 * It is removed when the process exits. Also turns logging down to
 * errors, so that expected warnings do not flood the fuzzer's output. */
const char *fz_scratch(void);
/* Makes dir (an absolute path) exist and empty (recursively). */
void fz_empty_dir(const char *dir);
/* Writes dir/name with exactly these bytes. */
void fz_write(const char *dir, const char *name, const void *p, size_t n);
/* Size of dir/name, or -1 if it does not exist. */
long long fz_size(const char *dir, const char *name);

#endif
