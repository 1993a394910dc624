/*
 * hist: the history checker (t/hist/hist.h) on hand-made histories, each
 * correct or with one known violation, and on random correct histories
 * (a sequential execution stretched into overlapping intervals) with and
 * without a stale read planted in them.
 */
#include "build.h"

#include "hist/hist.h"
#include "tap.h"
#include "util/rand.h"

#define W(c, k, v, ack, inv, done, out, t, i)                                                      \
	((struct hist_op){.client = c,                                                             \
			  .kind = HIST_WRITE,                                                      \
			  .key = k,                                                                \
			  .value = v,                                                              \
			  .level = ack,                                                            \
			  .invoke = inv,                                                           \
			  .complete = done,                                                        \
			  .outcome = out,                                                          \
			  .term = t,                                                               \
			  .index = i})
#define D(c, k, tag, inv, done, t, i)                                                              \
	((struct hist_op){.client = c,                                                             \
			  .kind = HIST_DELETE,                                                     \
			  .key = k,                                                                \
			  .value = tag,                                                            \
			  .level = HIST_ACK_QUORUM,                                                \
			  .invoke = inv,                                                           \
			  .complete = done,                                                        \
			  .outcome = HIST_OK,                                                      \
			  .term = t,                                                               \
			  .index = i})
#define R(c, k, v, lvl, inv, done, out, t, i)                                                      \
	((struct hist_op){.client = c,                                                             \
			  .kind = HIST_READ,                                                       \
			  .key = k,                                                                \
			  .value = v,                                                              \
			  .level = lvl,                                                            \
			  .invoke = inv,                                                           \
			  .complete = done,                                                        \
			  .outcome = out,                                                          \
			  .term = t,                                                               \
			  .index = i})
#define Q  HIST_ACK_QUORUM
#define OK HIST_OK

static size_t run(const struct hist_op *ops, size_t n, const struct hist_entry *truth,
		  size_t n_truth)
{
	struct hist *h = hist_new();
	size_t bad;

	for (size_t i = 0; i < n; i++)
		hist_add(h, &ops[i]);
	for (size_t i = 0; i < n_truth; i++)
		hist_truth_add(h, &truth[i]);
	bad = hist_check(h, 0, NULL, NULL);
	hist_free(h);
	return bad;
}

#define CHECK(want, truth, n_truth, name, ...)                                                     \
	do {                                                                                       \
		const struct hist_op ops_[] = {__VA_ARGS__};                                       \
		is_int(run(ops_, sizeof ops_ / sizeof ops_[0], truth, n_truth), want, name);       \
	} while (0)

static void linearizability(void)
{
	CHECK(0, NULL, 0, "a read after a write sees it", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      R(2, 7, 100, HIST_STRONG, 20, 30, OK, 0, 0));
	CHECK(1, NULL, 0, "a strong read that misses an earlier acknowledged write",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), W(1, 7, 101, Q, 20, 30, OK, 1, 3),
	      R(2, 7, 100, HIST_STRONG, 40, 50, OK, 0, 0));
	CHECK(0, NULL, 0, "an eventual read may be stale", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      W(1, 7, 101, Q, 20, 30, OK, 1, 3), R(2, 7, 100, HIST_EVENTUAL, 40, 50, OK, 0, 0));
	CHECK(0, NULL, 0, "a concurrent read sees the old or the new version",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), W(1, 7, 101, Q, 20, 40, OK, 1, 3),
	      R(2, 7, 100, HIST_QUORUM, 25, 30, OK, 0, 0),
	      R(3, 7, 101, HIST_QUORUM, 26, 31, OK, 0, 0));
	CHECK(1, NULL, 0, "once seen, a version cannot be unseen", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      W(1, 7, 101, Q, 20, 60, OK, 1, 3), R(2, 7, 101, HIST_STRONG, 25, 30, OK, 0, 0),
	      R(3, 7, 100, HIST_STRONG, 35, 40, OK, 0, 0));
	CHECK(0, NULL, 0, "a write of unknown outcome may apply late",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), W(1, 7, 101, Q, 20, HIST_NEVER, HIST_UNKNOWN, 0, 0),
	      R(2, 7, 100, HIST_STRONG, 30, 40, OK, 0, 0),
	      R(2, 7, 101, HIST_STRONG, 50, 60, OK, 0, 0));
	CHECK(0, NULL, 0, "... or never", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      W(1, 7, 101, Q, 20, HIST_NEVER, HIST_UNKNOWN, 0, 0),
	      R(2, 7, 100, HIST_STRONG, 500, 600, OK, 0, 0));
	CHECK(0, NULL, 0, "a write acknowledged at leader may be lost",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), W(1, 7, 101, HIST_ACK_LEADER, 20, 30, OK, 1, 3),
	      R(2, 7, 100, HIST_STRONG, 40, 50, OK, 0, 0));
	CHECK(1, NULL, 0, "a delete hides the point from later strong reads",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), D(1, 7, 900, 20, 30, 1, 3),
	      R(2, 7, 100, HIST_STRONG, 40, 50, OK, 0, 0));
	CHECK(0, NULL, 0, "absent after a delete", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      D(1, 7, 900, 20, 30, 1, 3), R(2, 7, 0, HIST_STRONG, 40, 50, OK, 0, 0));
	CHECK(1, NULL, 0, "absent before any write, then absent again after one",
	      R(2, 7, 0, HIST_STRONG, 0, 5, OK, 0, 0), W(1, 7, 100, Q, 10, 20, OK, 1, 2),
	      R(2, 7, 0, HIST_STRONG, 30, 40, OK, 0, 0));
	CHECK(0, NULL, 0, "keys are independent", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      W(1, 8, 200, Q, 0, 10, OK, 1, 3), R(2, 8, 200, HIST_STRONG, 20, 30, OK, 0, 0),
	      R(2, 7, 100, HIST_STRONG, 20, 30, OK, 0, 0));
}

static void ghosts(void)
{
	CHECK(1, NULL, 0, "a read of a version nobody wrote", W(1, 7, 100, Q, 0, 10, OK, 1, 2),
	      R(2, 7, 555, HIST_EVENTUAL, 20, 30, OK, 0, 0));
	CHECK(1, NULL, 0, "a read of a failed write", W(1, 7, 100, Q, 0, 10, HIST_FAIL, 0, 0),
	      R(2, 7, 100, HIST_EVENTUAL, 20, 30, OK, 0, 0));
	CHECK(1, NULL, 0, "a read from the future", W(1, 7, 100, Q, 50, 60, OK, 1, 2),
	      R(2, 7, 100, HIST_EVENTUAL, 20, 30, OK, 0, 0));
	CHECK(1, NULL, 0, "a read of another key's version", W(1, 8, 100, Q, 0, 10, OK, 1, 2),
	      R(2, 7, 100, HIST_EVENTUAL, 20, 30, OK, 0, 0));
	CHECK(1, NULL, 0, "two writes of one version", W(1, 8, 100, Q, 0, 10, OK, 1, 2),
	      W(1, 8, 100, Q, 20, 30, OK, 1, 3));
}

static const struct hist_entry truth[] = {
	{1, 1, 0, 0, 0}, /* a no-op */
	{2, 1, HIST_WRITE, 7, 100},
	{3, 1, HIST_WRITE, 7, 101},
	{4, 2, 0, 0, 0},
	{5, 2, HIST_DELETE, 7, 0},
	{6, 2, HIST_WRITE, 8, 300},
	{6, 2, HIST_WRITE, 7, 102}, /* one entry, two points */
};
#define NT (sizeof truth / sizeof truth[0])

static void with_truth(void)
{
	CHECK(0, truth, NT, "RYW: sees its token's version", W(1, 7, 101, Q, 0, 10, OK, 1, 3),
	      R(1, 7, 101, HIST_RYW, 20, 30, OK, 1, 3), W(2, 7, 100, Q, 0, 10, OK, 1, 2));
	CHECK(1, truth, NT, "RYW: sees a version before its token",
	      W(2, 7, 100, Q, 0, 10, OK, 1, 2), W(1, 7, 101, Q, 0, 10, OK, 1, 3),
	      R(1, 7, 100, HIST_RYW, 20, 30, OK, 1, 3));
	CHECK(0, truth, NT, "RYW: a later version is fine", W(1, 7, 101, Q, 0, 10, OK, 1, 3),
	      W(2, 7, 102, Q, 0, 10, OK, 2, 6), R(1, 7, 102, HIST_RYW, 20, 30, OK, 1, 3),
	      W(2, 7, 100, Q, 0, 10, OK, 1, 2), D(2, 7, 900, 0, 10, 2, 5),
	      W(3, 8, 300, Q, 0, 10, OK, 2, 6));
	CHECK(0, truth, NT, "RYW: absent after a later delete", W(1, 7, 101, Q, 0, 10, OK, 1, 3),
	      D(2, 7, 900, 0, 10, 2, 5), R(1, 7, 0, HIST_RYW, 20, 30, OK, 1, 3),
	      W(2, 7, 100, Q, 0, 10, OK, 1, 2), W(2, 7, 102, Q, 0, 10, OK, 2, 6),
	      W(3, 8, 300, Q, 0, 10, OK, 2, 6));
	CHECK(1, truth, NT, "RYW: passed with a token that is not committed",
	      W(1, 7, 101, Q, 0, 10, OK, 1, 3), W(2, 7, 100, Q, 0, 10, OK, 1, 2),
	      R(1, 7, 101, HIST_RYW, 20, 30, OK, 3, 3));
	CHECK(1, truth, NT, "lost: the token is committed", W(1, 7, 101, Q, 0, 10, OK, 1, 3),
	      W(2, 7, 100, Q, 0, 10, OK, 1, 2), R(1, 7, 0, HIST_RYW, 20, 30, HIST_LOST, 1, 3));
	CHECK(0, truth, NT, "lost: a token of a replaced entry",
	      W(1, 7, 555, HIST_ACK_LEADER, 0, 10, OK, 1, 5), W(2, 7, 100, Q, 0, 10, OK, 1, 2),
	      R(1, 7, 0, HIST_RYW, 20, 30, HIST_LOST, 1, 5));
	CHECK(1, truth, NT, "durable: a quorum write missing from the log",
	      W(1, 7, 555, Q, 0, 10, OK, 1, 5));
	CHECK(1, truth, NT, "durable: a token naming another entry",
	      W(1, 7, 555, HIST_ACK_LEADER, 0, 10, OK, 2, 6));
	CHECK(1, truth, NT, "durable: a read of an uncommitted write",
	      W(1, 9, 555, HIST_ACK_LEADER, 0, 10, OK, 3, 9),
	      R(2, 9, 555, HIST_EVENTUAL, 20, 30, OK, 0, 0));
}

/* Probes of the checker from the hostile review.  The first group are
 * histories that break a promise and that the checker once accepted (the
 * truth's order of writes and one client's sequence of operations were
 * not used); the second group are histories it must judge right. */
static const struct hist_entry rv_truth[] = {
	{1, 1, 0, 0, 0},
	{2, 1, HIST_WRITE, 7, 100},
	{3, 1, HIST_WRITE, 7, 101},
	{4, 1, HIST_WRITE, 7, 102},
};
#define RVT (sizeof rv_truth / sizeof rv_truth[0])

static void review_lenient(void)
{
	/* commit order is known (100 at 2, 101 at 3): once 101 is
	 * acknowledged at quorum, no strong read may see 100 — but the write
	 * of 100 had an unknown outcome, so the search applies it after 101 */
	CHECK(1, rv_truth, RVT, "review: a stale strong read hidden by an unknown write",
	      W(1, 7, 100, Q, 0, HIST_NEVER, HIST_UNKNOWN, 0, 0), W(2, 7, 101, Q, 1, 10, OK, 1, 3),
	      R(3, 7, 100, HIST_STRONG, 20, 30, OK, 0, 0), W(2, 7, 102, Q, 40, 50, OK, 1, 4),
	      R(3, 7, 102, HIST_STRONG, 60, 70, OK, 0, 0));
	CHECK(1, rv_truth, RVT, "review: a stale strong read hidden by a write acked at leader",
	      W(1, 7, 100, HIST_ACK_LEADER, 0, 5, OK, 1, 2), W(2, 7, 101, Q, 1, 10, OK, 1, 3),
	      R(3, 7, 100, HIST_STRONG, 20, 30, OK, 0, 0), W(2, 7, 102, Q, 40, 50, OK, 1, 4),
	      R(3, 7, 102, HIST_STRONG, 60, 70, OK, 0, 0));
	/* a write answered with a definite failure that is in the committed
	 * log: only caught today when some read happens to observe it */
	CHECK(1, rv_truth, RVT, "review: a failed write that was committed",
	      W(1, 7, 100, Q, 0, 10, HIST_FAIL, 0, 0), W(2, 7, 101, Q, 20, 30, OK, 1, 3),
	      W(2, 7, 102, Q, 40, 50, OK, 1, 4), R(3, 7, 102, HIST_STRONG, 60, 70, OK, 0, 0));
	/* one client's operations are sequential: a read it makes after the
	 * answer to its write, in the same instant (scenario clients do:
	 * op() returns at the answer's time), must see the write */
	CHECK(1, NULL, 0, "review: same client, read issued at the write's answer",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), R(1, 7, 0, HIST_STRONG, 10, 20, OK, 0, 0));
	CHECK(0, NULL, 0, "same client, a read issued and answered at the write's answer",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), R(1, 7, 100, HIST_STRONG, 10, 10, OK, 0, 0));
}

static void review_sound(void)
{
	CHECK(1, NULL, 0, "review: an unknown write that appears then disappears",
	      W(1, 7, 100, Q, 0, HIST_NEVER, HIST_UNKNOWN, 0, 0),
	      R(2, 7, 100, HIST_STRONG, 10, 20, OK, 0, 0),
	      R(2, 7, 0, HIST_STRONG, 30, 40, OK, 0, 0));
	CHECK(1, NULL, 0, "review: delete then re-write, a read sees the deleted version",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), D(1, 7, 900, 20, 30, 1, 3),
	      W(1, 7, 101, Q, 40, 50, OK, 1, 4), R(2, 7, 100, HIST_QUORUM, 60, 70, OK, 0, 0));
	CHECK(0, NULL, 0, "review: delete then re-write, concurrent read sees absent",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), D(1, 7, 900, 20, 30, 1, 3),
	      W(1, 7, 101, Q, 40, 50, OK, 1, 4), R(2, 7, 0, HIST_QUORUM, 25, 45, OK, 0, 0));
	CHECK(1, rv_truth, RVT, "review: an eventual read of an uncommitted write",
	      W(1, 7, 555, HIST_ACK_LEADER, 0, 10, OK, 2, 2),
	      R(2, 7, 555, HIST_EVENTUAL, 20, 30, OK, 0, 0));
	CHECK(1, rv_truth, RVT, "review: RYW sees a write invoked after it answered",
	      W(1, 7, 101, Q, 0, 10, OK, 1, 3), R(1, 7, 102, HIST_RYW, 20, 30, OK, 1, 3),
	      W(2, 7, 102, Q, 40, 50, OK, 1, 4));
	CHECK(1, rv_truth, RVT, "review: RYW with a token beyond the committed log",
	      W(1, 7, 101, Q, 0, 10, OK, 1, 3), R(1, 7, 101, HIST_RYW, 20, 30, OK, 1, 9));
	CHECK(1, rv_truth, RVT, "review: RYW with a token of the right index, wrong term",
	      W(1, 7, 101, Q, 0, 10, OK, 1, 3), R(1, 7, 101, HIST_RYW, 20, 30, OK, 2, 3));
	CHECK(1, rv_truth, RVT, "review: lost said of a committed leader-acked write",
	      W(1, 7, 100, HIST_ACK_LEADER, 0, 10, OK, 1, 2),
	      R(1, 7, 0, HIST_RYW, 20, 30, HIST_LOST, 1, 2));
	CHECK(1, rv_truth, RVT, "review: an OK write whose token names another key's entry",
	      W(1, 8, 700, HIST_ACK_ONE, 0, 10, OK, 1, 3));
	CHECK(0, rv_truth, RVT, "review: unknown writes in log order, reads follow it",
	      W(1, 7, 100, Q, 0, HIST_NEVER, HIST_UNKNOWN, 0, 0), W(2, 7, 101, Q, 1, 10, OK, 1, 3),
	      R(3, 7, 101, HIST_STRONG, 20, 30, OK, 0, 0), W(2, 7, 102, Q, 40, 50, OK, 1, 4),
	      R(3, 7, 102, HIST_STRONG, 60, 70, OK, 0, 0));
}

static void without_truth(void)
{
	CHECK(1, NULL, 0, "RYW by tokens: a committed write before the token is missed",
	      W(2, 7, 100, Q, 0, 10, OK, 1, 2), W(2, 7, 101, Q, 11, 20, OK, 1, 3),
	      W(1, 8, 200, Q, 21, 30, OK, 1, 4), R(1, 7, 100, HIST_RYW, 40, 50, OK, 1, 4));
	CHECK(0, NULL, 0, "RYW by tokens: the latest is seen", W(2, 7, 100, Q, 0, 10, OK, 1, 2),
	      W(2, 7, 101, Q, 11, 20, OK, 1, 3), W(1, 8, 200, Q, 21, 30, OK, 1, 4),
	      R(1, 7, 101, HIST_RYW, 40, 50, OK, 1, 4));
	CHECK(1, NULL, 0, "lost by tokens: the write was seen",
	      W(1, 7, 100, HIST_ACK_LEADER, 0, 10, OK, 1, 2),
	      R(2, 7, 100, HIST_EVENTUAL, 20, 30, OK, 0, 0),
	      R(1, 7, 0, HIST_RYW, 40, 50, HIST_LOST, 1, 2));
	CHECK(1, NULL, 0, "lost by tokens: the write was acknowledged at quorum",
	      W(1, 7, 100, Q, 0, 10, OK, 1, 2), R(1, 7, 0, HIST_RYW, 40, 50, HIST_LOST, 1, 2));
}

static void text_form(void)
{
	const struct hist_op ops[] = {W(1, 7, 100, Q, 0, 10, OK, 1, 2),
				      W(3, 7, 101, HIST_ACK_ALL, 5, HIST_NEVER, HIST_UNKNOWN, 0, 0),
				      R(2, 7, 100, HIST_RYW, 20, 30, OK, 1, 2),
				      R(2, 7, 0, HIST_QUORUM, 20, 30, HIST_LOST, 1, 2)};
	struct hist *h = hist_new();
	char why[200], *buf = NULL;
	size_t len = 0, n = sizeof ops / sizeof ops[0];
	FILE *f = open_memstream(&buf, &len);
	int same = 1;

	for (size_t i = 0; i < n; i++)
		hist_write_op(f, &ops[i]);
	fputs("# a comment\n", f);
	fclose(f);
	f = fmemopen(buf, len, "r");
	is_int(hist_load(h, f, why, sizeof why), 0, "text form loads");
	fclose(f);
	is_int(hist_count(h), n, "every line");
	for (size_t i = 0; i < n && i < hist_count(h); i++)
		same &= memcmp(hist_get(h, i), &ops[i], sizeof ops[i]) == 0;
	ok(same, "the operations round-trip");
	hist_free(h);
	free(buf);
	h = hist_new();
	{
		static char bad[] = "op 1 x 7 100 quorum 0 10 ok 1 2 0\n";

		f = fmemopen(bad, sizeof bad - 1, "r");
	}
	is_int(hist_load(h, f, why, sizeof why), -1, "a bad line is refused");
	like(why, "line 1", "... naming the line");
	fclose(f);
	hist_free(h);
}

/* A random sequential execution of n ops on k keys, stretched: each op
 * takes effect at its point p and is invoked/answered around it.  With
 * stale set, one strong read reports the value before the latest write
 * that completed before it was invoked (when there is one). */
static size_t random_history(uint64_t seed, int n, int keys, bool stale, size_t *planted)
{
	struct sh_rand r;
	struct hist *h = hist_new();
	uint64_t state[8] = {0}, version = 1;
	uint64_t last_done[8] = {0}, last_inv[8] = {0}, prev_state[8] = {0}, prev_done[8] = {0};
	size_t bad;

	sh_rand_seed(&r, seed);
	*planted = 0;
	for (int i = 0; i < n; i++) {
		uint64_t p = (uint64_t)i * 100 + 50, key = sh_rand_below(&r, (uint64_t)keys);
		uint64_t inv = p - sh_rand_below(&r, 300 < p ? 300 : p),
			 done = p + sh_rand_below(&r, 300);
		int what = (int)sh_rand_below(&r, 10);
		struct hist_op op;

		if (what < 4) {
			op = W(1, key, version, Q, inv, done, OK, 1, 0);
		} else if (what == 4) {
			op = D(1, key, version, inv, done, 1, 0);
		} else {
			op = R(2, key, state[key], HIST_STRONG, inv, done, OK, 0, 0);
			/* stale: the write before the last one ended before the
			 * last began, which ended before this read began */
			if (stale && *planted == 0 && last_done[key] != 0 && last_done[key] < inv &&
			    prev_state[key] != 0 && prev_done[key] < last_inv[key]) {
				op.value = prev_state[key];
				*planted = 1;
			}
		}
		if (what <= 4) {
			prev_state[key] = state[key];
			prev_done[key] = last_done[key];
			state[key] = what < 4 ? version : 0;
			version++;
			last_done[key] = done;
			last_inv[key] = inv;
		}
		hist_add(h, &op);
	}
	bad = hist_check(h, 0, NULL, NULL);
	hist_free(h);
	return bad;
}

static void random_histories(void)
{
	int good = 0, caught = 0, planted_runs = 0;

	for (uint64_t seed = 1; seed <= 300; seed++) {
		size_t planted;

		good += random_history(seed, 120, 1 + (int)(seed % 4), false, &planted) == 0;
		if (random_history(seed, 120, 1 + (int)(seed % 4), true, &planted) > 0)
			caught++;
		planted_runs += (int)planted;
	}
	is_int(good, 300, "300 random correct histories pass");
	ok(planted_runs > 100, "stale reads planted in %d histories", planted_runs);
	is_int(caught, planted_runs, "every planted stale read is caught");
}

int main(void)
{
	linearizability();
	ghosts();
	with_truth();
	without_truth();
	review_lenient();
	review_sound();
	text_form();
	random_histories();
	return done_testing();
}
