/*
 * jnum: a JSON number (RFC 8259's grammar) read straight from text, as
 * the double strtod gives for it — correctly rounded, bit for bit — without
 * a copy, a locale or a big-number conversion for the numbers clients
 * send: up to 19 significant digits and a decimal exponent within ±27 are
 * exact or proven unambiguous here, the rest go through strtod in the "C"
 * locale.  Used where jansson's tree would cost more than the work it feeds
 * (the vectors of REST upserts, net/rest_fastup.c).  No state, any thread.
 */
#ifndef SHOAL_NET_JNUM_H
#define SHOAL_NET_JNUM_H

#include <stdbool.h>
#include <stddef.h>

struct jnum {
	double value; /* what strtod gives for the token */
	size_t len;   /* the token's bytes */
	bool integer; /* no fraction and no exponent */
};

enum {
	JNUM_OK = 0,
	JNUM_SYNTAX = -1,   /* the text at s does not start with a JSON number */
	JNUM_OVERFLOW = -2, /* its magnitude is beyond a double's (strtod: ±HUGE_VAL) */
	JNUM_LONG = -3,     /* a token of more than JNUM_MAX_LEN bytes (not read) */
};
#define JNUM_MAX_LEN 400

/* Read the number at s (the text ends at end) into *n: JNUM_OK, or one of
 * the errors above.  The token ends where the grammar does; what follows
 * it is the caller's to check. */
int jnum_read(const char *s, const char *end, struct jnum *n);

#endif
