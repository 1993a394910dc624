/*
 * snapshot_impl: what snapshot.c (writing, reading, serving chunks) and
 * snapshot_recv.c (receiving chunks) share about the file format
 * (doc/storage-format.md, "Snapshots").  Nothing outside
 * src/storage/snapshot*.c includes it.  Pure functions.
 */
#ifndef SHOAL_STORAGE_SNAPSHOT_IMPL_H
#define SHOAL_STORAGE_SNAPSHOT_IMPL_H

/* The file format (doc/storage-format.md); 2 added the term history, 3
 * the collections' fresh sets, 4 the client sessions.  Written:
 * SNAP_VERSION; read: 2 to 4. */
#define SNAP_VERSION     4
#define SNAP_VERSION_MIN 2

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* A frame's CRC: its sequence number (8 bytes), then its data. */
uint32_t snap_frame_crc(uint64_t seq, const void *data, size_t len);
/* The end frame's CRC: its sequence number, then the content length. */
uint32_t snap_end_crc(uint64_t seq, uint64_t total);
/* What is wrong with the SNAP_HDR bytes of header h (magic, checksum,
 * version), or NULL; the index and term in it are the caller's to check. */
const char *snap_header_check(const unsigned char *h);
uint64_t snap_header_term(const unsigned char *h);
uint64_t snap_header_index(const unsigned char *h);

#endif
