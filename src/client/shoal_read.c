/*
 * libshoal read routing: where reads go (shoal.h, options.read_from;
 * doc/clients.md, "Where reads go").  Writes go to the leader on the
 * handle's connection; with read_from set, reads go through a second
 * handle of the library's own — the reader — opened on first use on
 * another list of addresses:
 *
 *   SHOAL_READ_PREFERRED  read_addr, then the handle's addresses;
 *   SHOAL_READ_SPREAD     the members' client addresses (asked once of
 *                         the cluster; the handle's addresses when that
 *                         fails), from one drawn at random.
 *
 * The reader fails over through its list as any call does; a failed read
 * leaves its message on the handle.  It shares the handle's TLS context.
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "util/alloc.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

bool cl_is_read(uint16_t method)
{
	switch (method) {
	case SHOAL__METHOD__METHOD_LIST_COLLECTIONS:
	case SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION:
	case SHOAL__METHOD__METHOD_GET:
	case SHOAL__METHOD__METHOD_COUNT:
	case SHOAL__METHOD__METHOD_SCROLL:
	case SHOAL__METHOD__METHOD_SEARCH: return true;
	default: return false;
	}
}

/* Append addr to the list in buf (comma-separated), unless it is there. */
static void add_addr(char *buf, size_t size, const char *addr)
{
	size_t len = strlen(buf), n = strlen(addr);

	if (n == 0 || len + n + 2 > size)
		return;
	for (const char *p = buf; (p = strstr(p, addr)) != NULL; p += n)
		if ((p == buf || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return;
	snprintf(buf + len, size - len, "%s%s", len ? "," : "", addr);
}

/* The alive members' client addresses, from a member drawn at random. */
static void members_from_random(shoal *c, char *buf, size_t size)
{
	struct shoal_member *m = NULL;
	size_t n = 0, alive = 0, start;

	if (shoal_cluster_members(c, &m, &n) != SHOAL_OK || n == 0) {
		shoal_free(m);
		return;
	}
	for (size_t i = 0; i < n; i++)
		alive += m[i].state == SHOAL_MEMBER_ALIVE && m[i].client_address[0] != '\0';
	start = alive > 0 ? (size_t)(c->rng % alive) : 0;
	for (size_t i = 0, k = 0; i < n; i++) {
		if (m[i].state != SHOAL_MEMBER_ALIVE || m[i].client_address[0] == '\0')
			continue;
		if (k++ >= start)
			add_addr(buf, size, m[i].client_address);
	}
	for (size_t i = 0; i < n; i++)
		if (m[i].state == SHOAL_MEMBER_ALIVE)
			add_addr(buf, size, m[i].client_address);
	shoal_free(m);
}

/* The reader's addresses: see the top. */
static void reader_addrs(shoal *c, char *buf, size_t size)
{
	buf[0] = '\0';
	if (c->o.read_from == SHOAL_READ_PREFERRED && c->read_addr != NULL)
		add_addr(buf, size, c->read_addr);
	else if (c->o.read_from == SHOAL_READ_SPREAD)
		members_from_random(c, buf, size);
	for (size_t i = 0; i < c->n_addrs; i++)
		add_addr(buf, size,
			 c->addrs[c->o.read_from == SHOAL_READ_SPREAD
					  ? (i + (size_t)(c->rng >> 32)) % c->n_addrs
					  : i]);
}

shoal *cl_reader(shoal *c)
{
	struct shoal_options o = c->o;
	char addrs[4096];

	if (c->o.read_from == SHOAL_READ_CONNECTED)
		return c;
	if (c->reader != NULL)
		return c->reader;
	reader_addrs(c, addrs, sizeof addrs);
	o.read_from = SHOAL_READ_CONNECTED;
	o.read_addr = NULL;
	/* the CA and key files were read into c->tls: shared below, with the
	 * server name (without a CA the options would be refused) */
	o.tls_ca_file = o.tls_cert_file = o.tls_key_file = o.tls_server_name = NULL;
	if (cl_open(addrs, &o, &c->reader) != SHOAL_OK) {
		snprintf(c->msg, sizeof c->msg, "reads: %.480s",
			 c->reader != NULL ? c->reader->msg : "out of memory");
		shoal_close(c->reader);
		c->reader = NULL;
		return NULL;
	}
	if (c->tls != NULL && SSL_CTX_up_ref(c->tls) == 1)
		c->reader->tls = c->tls;
	if (c->server_name != NULL &&
	    (c->reader->server_name = sh_strdup(c->server_name)) == NULL) {
		snprintf(c->msg, sizeof c->msg, "reads: out of memory");
		shoal_close(c->reader);
		c->reader = NULL;
		return NULL;
	}
	c->reader->o.tls_server_name = c->reader->server_name;
	return c->reader;
}
