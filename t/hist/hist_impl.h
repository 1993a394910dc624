/*
 * hist_impl: the recorder's fields, shared by hist.c and hist_check.c, and
 * the checker's state, shared by hist_check.c and hist_lin.c.
 */
#ifndef SHOAL_T_HIST_IMPL_H
#define SHOAL_T_HIST_IMPL_H

#include "hist/hist.h"

struct hist {
	struct hist_op *ops;
	size_t n_ops, cap_ops;
	struct hist_entry *truth; /* by increasing index */
	size_t n_truth, cap_truth;
	bool has_truth;
};

/* One run of hist_check. */
struct ck {
	const struct hist *h;
	FILE *out;
	size_t violations;
	uint64_t max_steps;
	struct hist_stats *st;
	size_t *by_value; /* write and delete ops by value */
	size_t n_by_value;
	struct hist_entry *tk; /* the truth's writes and deletes by (key, index) */
	size_t n_tk;
};

void hist__print_op(struct ck *c, const char *label, const struct hist_op *op);
void hist__violation(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The truth's entries touching key, by index (first, count). */
const struct hist_entry *hist__truth_of_key(struct ck *c, uint64_t key, size_t *n);

/* hist_lin.c: the linearizability of every register; 0, or -1 when out
 * of memory (violations are counted in c). */
int hist__check_linearizable(struct ck *c);

#endif
