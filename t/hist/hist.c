/*
 * hist: recording histories, their text form and the truth (see hist.h).
 * The checks are in hist_check.c.
 */
#include "build.h"

#include "hist/hist_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct hist *hist_new(void)
{
	return calloc(1, sizeof(struct hist));
}

void hist_free(struct hist *h)
{
	if (h == NULL)
		return;
	free(h->ops);
	free(h->truth);
	free(h);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if ((q = realloc(*p, c * size)) == NULL)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

long hist_add(struct hist *h, const struct hist_op *op)
{
	if (grow((void **)&h->ops, &h->cap_ops, h->n_ops + 1, sizeof *h->ops) != 0)
		return -1;
	h->ops[h->n_ops] = *op;
	return (long)h->n_ops++;
}

void hist_complete(struct hist *h, long i, uint64_t complete, uint8_t outcome, uint64_t value,
		   uint64_t term, uint64_t index)
{
	struct hist_op *op = &h->ops[i];

	op->complete = complete;
	op->outcome = outcome;
	if (op->kind == HIST_READ)
		op->value = value;
	else {
		op->term = term;
		op->index = index;
	}
}

size_t hist_count(const struct hist *h)
{
	return h->n_ops;
}

const struct hist_op *hist_get(const struct hist *h, size_t i)
{
	return &h->ops[i];
}

int hist_truth_add(struct hist *h, const struct hist_entry *e)
{
	if (h->n_truth > 0 && e->index < h->truth[h->n_truth - 1].index)
		return -1;
	if (grow((void **)&h->truth, &h->cap_truth, h->n_truth + 1, sizeof *h->truth) != 0)
		return -1;
	h->truth[h->n_truth++] = *e;
	h->has_truth = true;
	return 0;
}

/* ------------------------------------------------------------ names */

static const char *const ack_names[] = {"?", "leader", "one", "quorum", "all"};
static const char *const read_names[] = {"?", "eventual", "ryw", "strong", "quorum"};
static const char *const outcome_names[] = {"?", "ok", "fail", "unknown", "lost"};

const char *hist_level_name(uint8_t kind, uint8_t level)
{
	if (level > 4)
		return "?";
	return kind == HIST_READ ? read_names[level] : ack_names[level];
}

const char *hist_outcome_name(uint8_t outcome)
{
	return outcome <= HIST_LOST ? outcome_names[outcome] : "?";
}

/* ------------------------------------------------------------ text */

int hist_write_op(FILE *f, const struct hist_op *op)
{
	static const char kinds[] = "?wdr";
	char done[24];

	if (op->complete == HIST_NEVER)
		snprintf(done, sizeof done, "-");
	else
		snprintf(done, sizeof done, "%" PRIu64, op->complete);
	return fprintf(f,
		       "op %" PRIu32 " %c %" PRIu64 " %" PRIu64 " %s %" PRIu64 " %s %s %" PRIu64
		       " %" PRIu64 " %" PRIu32 "\n",
		       op->client, kinds[op->kind <= HIST_READ ? op->kind : 0], op->key, op->value,
		       hist_level_name(op->kind, op->level), op->invoke, done,
		       hist_outcome_name(op->outcome), op->term, op->index, op->node) < 0
		       ? -1
		       : 0;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* One "op ..." line into op; -1 when malformed. */
static int parse_op(const char *line, struct hist_op *op)
{
	char kind, level[16], done[24], outcome[16];
	int lv, oc;

	memset(op, 0, sizeof *op);
	if (sscanf(line,
		   "op %" SCNu32 " %c %" SCNu64 " %" SCNu64 " %15s %" SCNu64 " %23s %15s %" SCNu64
		   " %" SCNu64 " %" SCNu32,
		   &op->client, &kind, &op->key, &op->value, level, &op->invoke, done, outcome,
		   &op->term, &op->index, &op->node) != 11)
		return -1;
	op->kind = kind == 'w'   ? HIST_WRITE
		   : kind == 'd' ? HIST_DELETE
		   : kind == 'r' ? HIST_READ
				 : 0;
	lv = op->kind == HIST_READ ? lookup(read_names, 5, level) : lookup(ack_names, 5, level);
	oc = lookup(outcome_names, 5, outcome);
	if (op->kind == 0 || lv < 0 || oc < 0)
		return -1;
	op->level = (uint8_t)lv;
	op->outcome = (uint8_t)oc;
	if (strcmp(done, "-") == 0)
		op->complete = HIST_NEVER;
	else if (sscanf(done, "%" SCNu64, &op->complete) != 1)
		return -1;
	return 0;
}

int hist_load(struct hist *h, FILE *f, char *why, size_t size)
{
	char line[512];
	size_t no = 0;
	struct hist_op op;

	while (fgets(line, sizeof line, f) != NULL) {
		no++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (parse_op(line, &op) != 0) {
			snprintf(why, size, "line %zu: not an operation: %.80s", no, line);
			return -1;
		}
		if (hist_add(h, &op) < 0) {
			snprintf(why, size, "line %zu: out of memory", no);
			return -1;
		}
	}
	if (ferror(f)) {
		snprintf(why, size, "read error after line %zu: %s", no, strerror(errno));
		return -1;
	}
	return 0;
}
