/*
 * tfile: small files for tests, in a directory the test made.
 */
#ifndef SHOAL_T_TFILE_H
#define SHOAL_T_TFILE_H

#include <stdio.h>
#include <sys/stat.h>

#include "tap.h"

/* dir/name holding text, with mode; the path stays valid for the next 7
 * calls. */
static __attribute__((unused)) const char *tfile(const char *dir, const char *name,
						 const char *text, mode_t mode)
{
	static char path[8][256];
	static int k;
	char *p = path[k++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	if ((f = fopen(p, "w")) == NULL)
		bail_out("cannot write %s", p);
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	return p;
}

#endif
