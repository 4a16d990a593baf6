/* eval.c - the model in eval mode on the run's data (eval.h): batches into
 * the graph's input (gathered on the device when the data lives there),
 * softmax predictions, and a split evaluated on every head. */
#include "eval.h"

#include "backend.h"
#include "loss.h"

#include <stdlib.h>
#include <string.h>

int rn_run_load_host(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                     struct rn_error *err)
{
    struct rn_tensor *x = rn_graph_input_host(&run->graph, n, err);
    if (!x)
        return -1;
    const size_t per = (size_t)split->c * split->h * split->w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = split->images + (size_t)(idx ? idx[i] : i) * per;
        float *dst = x->data + (size_t)i * per;
        for (size_t k = 0; k < per; k++)
            dst[k] = src[k] * (1.0f / 255.0f);
    }
    return 0;
}

int rn_run_load_batch(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                      struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    int k = (int)(split - run->data.splits);
    if (run->data_device && g->device == run->data_device && k >= 0 && k < RN_MAX_SPLITS &&
        run->dev_images[k]) {
        if (n < 1 || n > g->max_n)
            return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n,
                             g->max_n);
        const struct rn_backend *be = rn_backend_of(g->device);
        int32_t ix[n];
        for (int i = 0; i < n; i++)
            ix[i] = idx ? idx[i] : i;
        g->x.n = n;
        if (be->upload(run->dev_idx, ix, sizeof ix, err) ||
            be->data->gather_images(run->dev_images[k], run->dev_idx, n,
                                    (size_t)split->c * split->h * split->w, g->x.data, err))
            return rn_error_prefix(err, "batch of %s", split->name);
        return 0;
    }
    return rn_run_load_host(run, split, idx, n, err) || rn_graph_input_commit(g, err) ? -1 : 0;
}

int rn_run_predict(struct rn_run *run, int n, float *probs, struct rn_error *err)
{
    struct rn_ctx ctx = {.train = 0, .seed = run->spec->seed, .step = run->step};
    if (rn_graph_forward(&run->graph, n, run->logits_node, &ctx, err))
        return -1;
    const struct rn_tensor *z = rn_graph_output_host(&run->graph, run->logits_node, err);
    if (!z)
        return -1;
    static const uint8_t zeros[4096];
    if (n > (int)sizeof zeros)
        return rn_errorf(err, "predict: batch of %d is too large", n);
    rn_cross_entropy(z, zeros, 0, NULL, NULL, probs);
    return 0;
}

/* rn_run_evaluate on a device: losses, hits and the confusion matrix are
 * summed there and read back once, at the end of the split. */
static int evaluate_device(struct rn_run *run, const struct rn_split *split, int ks,
                           const struct rn_head *heads, int n_heads, int primary, const int *keep,
                           int bs, struct rn_ctx *ctx, double *loss, int *correct,
                           struct rn_split_result *res, struct rn_error *err)
{
    const struct rn_backend *be = rn_backend_of(run->graph.device);
    const int k = run->data.n_classes;
    double *d_loss = run->dev_eval;
    int32_t *d_correct = (int32_t *)(d_loss + RN_MAX_LOSSES), *d_conf = d_correct + RN_MAX_LOSSES;
    const size_t bytes =
        RN_MAX_LOSSES * (sizeof(double) + sizeof(int32_t)) + (size_t)k * k * sizeof(int32_t);
    if (be->zero(run->dev_eval, bytes, err))
        return -1;
    const size_t per = (size_t)split->c * split->h * split->w;
    for (int start = 0; start < split->n; start += bs) {
        int n = split->n - start < bs ? split->n - start : bs;
        /* images [start, start + n): the split from start, indices 0..n-1 */
        run->graph.x.n = n;
        if (be->data->gather_images((const uint8_t *)run->dev_images[ks] + (size_t)start * per,
                                    run->dev_iota, n, per, run->graph.x.data, err))
            return rn_error_prefix(err, "batch of %s", split->name);
        if (rn_graph_infer(&run->graph, n, keep, n_heads, ctx, err))
            return -1;
        for (int h = 0; h < n_heads; h++) {
            const uint8_t *y =
                heads[h].target == RN_TARGET_COLOUR ? run->dev_colours[ks] : run->dev_labels[ks];
            if (!y)
                continue;
            int digit_main = h == primary && heads[h].target == RN_TARGET_DIGIT;
            if (be->loss->cross_entropy(run->graph.nodes[heads[h].node].y.data, y + start, n, k, 0,
                                        NULL, d_loss + h, d_correct + h, digit_main ? d_conf : NULL,
                                        err))
                return rn_error_prefix(err, "evaluating %s", split->name);
        }
    }
    _Static_assert(sizeof(int) == sizeof(int32_t), "the confusion counts come back as int32");
    double sums[RN_MAX_LOSSES];
    int32_t counts[RN_MAX_LOSSES];
    if (be->download(sums, d_loss, sizeof sums, err) ||
        be->download(counts, d_correct, sizeof counts, err) ||
        be->download(res->confusion, d_conf, (size_t)k * k * sizeof(int32_t), err))
        return rn_error_prefix(err, "evaluation sums of %s", split->name);
    for (int h = 0; h < n_heads; h++) {
        loss[h] = sums[h];
        correct[h] = counts[h];
    }
    return 0;
}

int rn_run_evaluate(struct rn_run *run, const struct rn_split *split, struct rn_split_result *res,
                    struct rn_error *err)
{
    memset(res, 0, sizeof *res);
    snprintf(res->split, sizeof res->split, "%s", split->name);
    const int k = run->data.n_classes;
    if (k < 1 || k > RN_MAX_CLASSES)
        return rn_errorf(err, "evaluating %s: the data has %d classes; the runner counts 1 to %d",
                         split->name, k, RN_MAX_CLASSES);
    res->n_classes = k;
    int bs = run->spec->has_train ? run->spec->train.eval_batch : 256;
    if (bs > run->graph.max_n)
        bs = run->graph.max_n;
    struct rn_ctx ctx = {.train = 0, .seed = run->spec->seed, .step = run->step};
    /* the heads: the program's, or the one logits node of a loaded model */
    struct rn_head single = {.node = run->logits_node, .target = RN_TARGET_DIGIT};
    const struct rn_head *heads = run->has_program ? run->program.heads : &single;
    const int n_heads = run->has_program ? run->program.n_heads : 1;
    const int primary = run->has_program ? run->program.primary : 0;
    const uint8_t *colours = rn_run_split_colours(run, split);
    /* only the heads' logits are read: an inference pass (rn_graph_infer) */
    int keep[RN_MAX_LOSSES];
    for (int h = 0; h < n_heads; h++)
        keep[h] = heads[h].node;
    double loss[RN_MAX_LOSSES] = {0};
    int correct[RN_MAX_LOSSES] = {0};
    int idx[bs];
    const int ks = (int)(split - run->data.splits);
    const int on_device = run->data_device && run->graph.device == run->data_device && ks >= 0 &&
                          ks < RN_MAX_SPLITS && run->dev_labels[ks];
    if (on_device) {
        if (evaluate_device(run, split, ks, heads, n_heads, primary, keep, bs, &ctx, loss, correct,
                            res, err))
            return -1;
    }
    for (int start = 0; !on_device && start < split->n; start += bs) {
        int n = split->n - start < bs ? split->n - start : bs;
        for (int i = 0; i < n; i++)
            idx[i] = start + i;
        if (rn_run_load_batch(run, split, idx, n, err) ||
            rn_graph_infer(&run->graph, n, keep, n_heads, &ctx, err))
            return -1;
        for (int h = 0; h < n_heads; h++) {
            const uint8_t *y = heads[h].target == RN_TARGET_COLOUR ? colours : split->labels;
            if (!y)
                continue;
            int c = 0;
            const struct rn_tensor *z = rn_graph_output_host(&run->graph, heads[h].node, err);
            if (!z)
                return -1;
            loss[h] += rn_cross_entropy(z, y + start, 0, NULL, &c, run->probs) * n;
            correct[h] += c;
            if (h != primary || heads[h].target != RN_TARGET_DIGIT)
                continue;
            for (int i = 0; i < n; i++) {
                const float *p = run->probs + (size_t)i * k;
                int arg = 0;
                for (int j = 1; j < k; j++)
                    if (p[j] > p[arg])
                        arg = j;
                res->confusion[split->labels[start + i] * k + arg]++;
            }
        }
    }
    res->n = split->n;
    res->n_heads = n_heads;
    for (int h = 0; h < n_heads; h++) {
        int has = heads[h].target == RN_TARGET_DIGIT || colours;
        res->head_n[h] = has ? split->n : 0;
        res->head_loss[h] = has && split->n ? loss[h] / split->n : 0;
        res->head_accuracy[h] = has && split->n ? (double)correct[h] / split->n : 0;
        if (h == primary) {
            res->loss = res->head_loss[h];
            res->accuracy = res->head_accuracy[h];
        }
    }
    return 0;
}
