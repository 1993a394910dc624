/*
 * hexname: the file names of log segments and snapshots — a number as
 * exactly 16 lowercase hex digits and a suffix ("00000000000000a1.seg",
 * "00000000000000a1.snap"; doc/storage-format.md).  Header-only, pure.
 */
#ifndef SHOAL_STORAGE_HEXNAME_H
#define SHOAL_STORAGE_HEXNAME_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* name == 16 hex digits + suffix?  Then *v is the number. */
static inline bool hexname_parse(const char *name, const char *suffix, uint64_t *v)
{
	uint64_t n = 0;

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix) != 0)
		return false;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return false;
		n = n << 4 | (uint64_t)d;
	}
	*v = n;
	return true;
}

#endif
