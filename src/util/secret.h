/*
 * secret: reading files that hold secrets (API keys, gossip keys).
 *
 * Such a file must be a regular file that neither group nor others may
 * read or write (as ssh checks its keys); it is read whole, without
 * blocking on a FIFO.
 */
#ifndef SHOAL_UTIL_SECRET_H
#define SHOAL_UTIL_SECRET_H

#include <stddef.h>

#include "util/err.h"

/* Read the secret file path into buf (at most max bytes; a larger file is
 * refused); what names it in messages ("key file").  The caller wipes buf
 * (explicit_bzero) when done. */
int sh_secret_read(const char *path, const char *what, char *buf, size_t max, size_t *len,
		   struct sh_err *err);

#endif
