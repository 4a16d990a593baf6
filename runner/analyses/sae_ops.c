/* sae_ops.c - the arithmetic of the sae analyses (sae_ops.h). */
#include "sae_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loss.h"

/* ---- the model around the SAE ------------------------------------------------ */

/* run = the nodes after node on the way to logits. */
static void head_nodes(const struct rn_graph *g, int node, int logits, unsigned char *run,
                       unsigned char *tmp)
{
    memset(tmp, 0, (size_t)g->n_nodes);
    tmp[node] = 1;
    rn_graph_mark_downstream(g, tmp, run);
    memset(tmp, 0, (size_t)g->n_nodes);
    tmp[logits] = 1;
    unsigned char *up = tmp + g->n_nodes;
    rn_graph_mark_upstream(g, tmp, up);
    for (int i = 0; i < g->n_nodes; i++)
        run[i] = run[i] && up[i] && i != node;
}

int rn_sae_check_cut(const struct rn_graph *g, int node, int logits, struct rn_error *err)
{
    if (node < 0 || node >= g->n_nodes || logits <= node)
        return rn_errorf(err, "the logits ('%s') do not come after node '%s'",
                         g->nodes[logits].layer.name,
                         node >= 0 && node < g->n_nodes ? g->nodes[node].layer.name : "?");
    unsigned char *run = rn_calloc((size_t)g->n_nodes * 3, 1, err);
    if (!run)
        return -1;
    head_nodes(g, node, logits, run, run + g->n_nodes);
    int rc = 0;
    if (!run[logits])
        rc = rn_errorf(err, "the logits ('%s') do not read node '%s'", g->nodes[logits].layer.name,
                       g->nodes[node].layer.name);
    for (int i = node + 1; i < g->n_nodes && !rc; i++)
        for (int j = 0; run[i] && j < g->nodes[i].n_in && !rc; j++) {
            int q = g->nodes[i].in[j];
            if (q != node && (q < 0 || !run[q]))
                rc = rn_errorf(err,
                               "node '%s' reads '%s', which is not computed from '%s': an SAE "
                               "there would not replace everything the logits see",
                               g->nodes[i].layer.name, q < 0 ? "the input" : g->nodes[q].layer.name,
                               g->nodes[node].layer.name);
        }
    free(run);
    return rc;
}

int rn_sae_extract(struct rn_graph *g, int node, const uint8_t *images, size_t n, float *h,
                   struct rn_error *err)
{
    const struct rn_shape o = g->nodes[node].layer.out;
    const size_t d = (size_t)o.c * o.h * o.w;
    const int bs = rn_inputs_batch(g);
    struct rn_ctx ctx = {.train = 0};
    for (size_t s = 0; s < n; s += (size_t)bs) {
        int m = n - s < (size_t)bs ? (int)(n - s) : bs;
        if (rn_inputs_load(g, images, (int)s, m, err) || rn_graph_forward(g, m, node, &ctx, err))
            return -1;
        const struct rn_tensor *y = rn_graph_output_host(g, node, err);
        if (!y)
            return -1;
        memcpy(h + s * d, y->data, sizeof(float) * (size_t)m * d);
    }
    return 0;
}

int rn_sae_head(struct rn_graph *g, int node, int logits, const float *h, size_t n, float *out,
                struct rn_error *err)
{
    struct rn_node *nd = &g->nodes[node];
    const size_t d = (size_t)nd->layer.out.c * nd->layer.out.h * nd->layer.out.w;
    const int k = g->nodes[logits].layer.out.c, bs = rn_inputs_batch(g);
    struct rn_tensor stage = {0};
    struct rn_ctx ctx = {.train = 0};
    int rc = -1;
    unsigned char *run = rn_calloc((size_t)g->n_nodes * 3, 1, err);
    if (!run)
        return -1;
    head_nodes(g, node, logits, run, run + g->n_nodes);
    for (size_t s = 0; s < n; s += (size_t)bs) {
        int m = n - s < (size_t)bs ? (int)(n - s) : bs;
        nd->y.n = m;
        struct rn_tensor *v = rn_host_view(&nd->y, &stage, 0, err);
        if (!v)
            goto done;
        memcpy(v->data, h + s * d, sizeof(float) * (size_t)m * d);
        if (rn_host_commit(&nd->y, v, err) || rn_graph_forward_nodes(g, m, run, &ctx, err))
            goto done;
        const struct rn_tensor *z = rn_graph_output_host(g, logits, err);
        if (!z)
            goto done;
        memcpy(out + s * k, z->data, sizeof(float) * (size_t)m * k);
    }
    rc = 0;
done:
    rn_tensor_free(&stage);
    free(run);
    return rc;
}

double rn_sae_ce(const float *logits, size_t n, int k, const uint8_t *labels, double *acc,
                 float *probs)
{
    struct rn_tensor z = rn_tensor_view((float *)logits, (int)n, k, 1, 1);
    int correct = 0;
    double ce = n ? rn_cross_entropy(&z, labels, 0, NULL, &correct, probs) : NAN;
    if (acc)
        *acc = n ? (double)correct / (double)n : NAN;
    return ce;
}

/* ---- edits -------------------------------------------------------------------- */

int rn_sae_edit_hidden(const struct rn_sae *s, const float *h, size_t n,
                       const struct rn_sae_edit *edits, int n_edits, int keep_error, float *out,
                       float *codes, struct rn_error *err)
{
    const size_t d = (size_t)s->d, m = (size_t)s->m;
    float *c = codes ? codes : rn_malloc(sizeof(float) * n * m, err);
    float *rec = keep_error ? rn_malloc(sizeof(float) * n * d, err) : NULL;
    if (!c || (keep_error && !rec)) {
        if (c != codes)
            free(c);
        free(rec);
        return -1;
    }
    rn_sae_encode(s, h, n, c);
    if (keep_error)
        rn_sae_decode(s, c, n, rec);
    for (size_t i = 0; i < n; i++)
        for (int e = 0; e < n_edits; e++) {
            float *cj = &c[i * m + (size_t)edits[e].feature];
            *cj = edits[e].op == RN_SAE_EDIT_SET ? edits[e].value : edits[e].value * *cj;
        }
    rn_sae_decode(s, c, n, out);
    if (keep_error)
        for (size_t q = 0; q < n * d; q++)
            out[q] += h[q] - rec[q];
    if (c != codes)
        free(c);
    free(rec);
    return 0;
}

/* ---- splicing ------------------------------------------------------------------ */

double rn_sae_loss_recovered(double ce_clean, double ce_sae, double ce_ablated)
{
    if (ce_ablated == ce_clean)
        return NAN;
    return (ce_ablated - ce_sae) / (ce_ablated - ce_clean);
}

int rn_sae_splice(struct rn_graph *g, int node, int logits, const struct rn_sae *s, const float *h,
                  size_t n, const uint8_t *labels, const float *mean, struct rn_sae_splice *out,
                  struct rn_error *err)
{
    const size_t d = (size_t)s->d;
    const int k = g->nodes[logits].layer.out.c;
    float *x = rn_malloc(sizeof(float) * n * d, err), *z = rn_malloc(sizeof(float) * n * k, err);
    int rc = -1;
    if (!x || !z)
        goto done;
    if (rn_sae_head(g, node, logits, h, n, z, err))
        goto done;
    out->ce_clean = rn_sae_ce(z, n, k, labels, &out->acc_clean, NULL);
    if (rn_sae_edit_hidden(s, h, n, NULL, 0, 0, x, NULL, err) ||
        rn_sae_head(g, node, logits, x, n, z, err))
        goto done;
    out->ce_sae = rn_sae_ce(z, n, k, labels, &out->acc_sae, NULL);
    memset(x, 0, sizeof(float) * n * d);
    if (rn_sae_head(g, node, logits, x, n, z, err))
        goto done;
    out->ce_zero = rn_sae_ce(z, n, k, labels, &out->acc_zero, NULL);
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * d, mean, sizeof(float) * d);
    if (rn_sae_head(g, node, logits, x, n, z, err))
        goto done;
    out->ce_mean = rn_sae_ce(z, n, k, labels, &out->acc_mean, NULL);
    out->recovered_zero = rn_sae_loss_recovered(out->ce_clean, out->ce_sae, out->ce_zero);
    out->recovered_mean = rn_sae_loss_recovered(out->ce_clean, out->ce_sae, out->ce_mean);
    rc = 0;
done:
    free(x);
    free(z);
    return rc;
}

/* ---- feature tables ------------------------------------------------------------- */

const char *const rn_sae_class_names[RN_SAE_N_CLASSES] = {"dead", "colour", "digit", "both",
                                                          "mixed"};

int rn_sae_class_means(const float *codes, size_t n, int m, const uint8_t *labels, int classes,
                       float *table, float *firing, struct rn_error *err)
{
    double *sum = rn_calloc((size_t)m * classes * 2, sizeof *sum, err);
    double *fsum = sum + (size_t)m * classes;
    long *count = rn_calloc((size_t)classes, sizeof *count, err);
    long *fcount = rn_calloc((size_t)m * classes, sizeof *fcount, err);
    if (!sum || !count || !fcount) {
        free(sum);
        free(count);
        free(fcount);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int q = labels[i];
        if (q >= classes)
            continue;
        count[q]++;
        const float *c = codes + i * (size_t)m;
        for (int j = 0; j < m; j++) {
            sum[(size_t)j * classes + q] += c[j];
            if (c[j] > 0) {
                fsum[(size_t)j * classes + q] += c[j];
                fcount[(size_t)j * classes + q]++;
            }
        }
    }
    for (int j = 0; j < m; j++)
        for (int q = 0; q < classes; q++) {
            size_t t = (size_t)j * classes + q;
            table[t] = count[q] ? (float)(sum[t] / (double)count[q]) : 0;
            if (firing)
                firing[t] = fcount[t] ? (float)(fsum[t] / (double)fcount[t]) : 0;
        }
    free(sum);
    free(count);
    free(fcount);
    return 0;
}

double rn_sae_selectivity(const float *row, int k)
{
    double mean = 0, max = row[0];
    for (int q = 0; q < k; q++) {
        mean += row[q] / (double)k;
        max = row[q] > max ? row[q] : max;
    }
    return mean > 0 ? max / mean : 0;
}

void rn_sae_classify(const float *digit_table, int k_digit, const float *colour_table, int k_colour,
                     const int *alive, int m, double threshold, float *sel_digit, float *sel_colour,
                     int32_t *cls, int counts[RN_SAE_N_CLASSES])
{
    memset(counts, 0, sizeof(int) * RN_SAE_N_CLASSES);
    for (int j = 0; j < m; j++) {
        double sd = rn_sae_selectivity(digit_table + (size_t)j * k_digit, k_digit);
        double sc = rn_sae_selectivity(colour_table + (size_t)j * k_colour, k_colour);
        sel_digit[j] = (float)sd;
        sel_colour[j] = (float)sc;
        int d = sd > threshold, c = sc > threshold;
        cls[j] = !alive[j] ? RN_SAE_DEAD
                 : c && d  ? RN_SAE_BOTH
                 : c       ? RN_SAE_COLOUR
                 : d       ? RN_SAE_DIGIT
                           : RN_SAE_MIXED;
        counts[cls[j]]++;
    }
}

/* The sort of rn_sae_feature_order: rank of the class, argmax, -max. */
struct order_key {
    int rank, arg;
    float max;
    int j;
};

static int order_cmp(const void *pa, const void *pb)
{
    const struct order_key *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank - b->rank;
    if (a->arg != b->arg)
        return a->arg - b->arg;
    if (a->max != b->max)
        return a->max > b->max ? -1 : 1;
    return a->j - b->j;
}

void rn_sae_feature_order(const float *digit_table, int k_digit, const float *colour_table,
                          int k_colour, const int32_t *cls, int m, int32_t *order)
{
    static const int rank[RN_SAE_N_CLASSES] = {[RN_SAE_COLOUR] = 0,
                                               [RN_SAE_BOTH] = 1,
                                               [RN_SAE_DIGIT] = 2,
                                               [RN_SAE_MIXED] = 3,
                                               [RN_SAE_DEAD] = 4};
    struct order_key *key = malloc(sizeof *key * (size_t)(m > 0 ? m : 1));
    if (!key) { /* the identity order, rather than nothing */
        for (int j = 0; j < m; j++)
            order[j] = j;
        return;
    }
    for (int j = 0; j < m; j++) {
        int colour = cls[j] == RN_SAE_COLOUR || cls[j] == RN_SAE_BOTH;
        const float *row =
            colour ? colour_table + (size_t)j * k_colour : digit_table + (size_t)j * k_digit;
        int k = colour ? k_colour : k_digit, arg = rn_argmax(row, k);
        key[j] = (struct order_key){rank[cls[j]], cls[j] == RN_SAE_DEAD ? 0 : arg,
                                    cls[j] == RN_SAE_DEAD ? 0 : row[arg], j};
    }
    qsort(key, (size_t)m, sizeof *key, order_cmp);
    for (int j = 0; j < m; j++)
        order[j] = key[j].j;
    free(key);
}

int rn_sae_colour_feature(const float *colour_table, int k_colour, const int32_t *cls, int m, int q,
                          int *selective)
{
    int best = -1, any = -1;
    for (int j = 0; j < m; j++) {
        float v = colour_table[(size_t)j * k_colour + q];
        if (cls[j] == RN_SAE_DEAD || !(v > 0))
            continue;
        int own = (cls[j] == RN_SAE_COLOUR || cls[j] == RN_SAE_BOTH) &&
                  rn_argmax(colour_table + (size_t)j * k_colour, k_colour) == q;
        if (own && (best < 0 || v > colour_table[(size_t)best * k_colour + q]))
            best = j;
        if (any < 0 || v > colour_table[(size_t)any * k_colour + q])
            any = j;
    }
    *selective = best >= 0;
    return best >= 0 ? best : any;
}
