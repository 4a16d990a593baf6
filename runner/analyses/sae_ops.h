/* sae_ops.h - the arithmetic of the sae analyses (sae.c, sae_intervene.c)
 * around an SAE (sae.h) on a model's hidden state, exposed for their tests:
 *
 *   extraction   the activations h (n, d) of a node over images, eval mode
 *   the head     the rest of the model after that node, run on any h: the
 *                node must be a cut (every later node reads only it and
 *                nodes after it), so nothing before it is recomputed
 *   edits        encode -> edit the codes -> decode, the hidden state the
 *                head then reads (interventions)
 *   splicing     cross-entropy and accuracy with the hidden state replaced
 *                by the SAE's reconstruction, by zeros or by the data mean,
 *                and loss recovered = (CE_ablated - CE_sae) / (CE_ablated -
 *                CE_clean): 1 for a perfect reconstruction, 0 for one no
 *                better than the ablation
 *   feature tables  mean activation per feature and class (digit, colour),
 *                selectivity = max class mean / mean over classes, and the
 *                classes dead, colour, digit, both, mixed
 *
 * Every function works on host memory; the graph may live on any device.
 */
#ifndef RN_ANALYSES_SAE_OPS_H
#define RN_ANALYSES_SAE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "graph.h"
#include "sae.h"

/* ---- the model around the SAE ------------------------------------------------ */

/* 0 when node is a cut of g before logits (node < logits, and every node
 * after node reads only node or later nodes); else -1 and err names the node
 * that reads past it ("node 'fc' reads 'conv3', before 'features'"). */
int rn_sae_check_cut(const struct rn_graph *g, int node, int logits, struct rn_error *err);

/* h (n, d) = the output of node (flattened per sample) for uint8 images
 * (n, c, h, w), in eval mode, in batches of rn_inputs_batch(g). */
int rn_sae_extract(struct rn_graph *g, int node, const uint8_t *images, size_t n, float *h,
                   struct rn_error *err);

/* The head: logits (n, k) of the nodes after node when node's output is h
 * (n, d). node must be a cut (rn_sae_check_cut). */
int rn_sae_head(struct rn_graph *g, int node, int logits, const float *h, size_t n, float *out,
                struct rn_error *err);

/* Mean cross-entropy of logits (n, k) against labels; *acc the fraction whose
 * first maximum is the label; probs (n, k, may be NULL) the softmax. */
double rn_sae_ce(const float *logits, size_t n, int k, const uint8_t *labels, double *acc,
                 float *probs);

/* ---- edits of the codes ----------------------------------------------------- */

enum rn_sae_edit_op {
    RN_SAE_EDIT_SET,   /* c_j = value (ablation: 0; injection: a strength) */
    RN_SAE_EDIT_SCALE, /* c_j = value * c_j */
};
struct rn_sae_edit {
    int feature;
    enum rn_sae_edit_op op;
    float value;
};

/* out (n, d) = decode(edit(encode(h))), the edits applied in order to every
 * sample's codes; keep_error: plus h - decode(encode(h)), so that without
 * edits out is h itself and an edit changes only what it changes. codes (n,
 * m, may be NULL) gets the edited codes. */
int rn_sae_edit_hidden(const struct rn_sae *s, const float *h, size_t n,
                       const struct rn_sae_edit *edits, int n_edits, int keep_error, float *out,
                       float *codes, struct rn_error *err);

/* ---- splicing ------------------------------------------------------------------ */

struct rn_sae_splice {
    double ce_clean, ce_sae, ce_zero, ce_mean;     /* mean cross-entropy */
    double acc_clean, acc_sae, acc_zero, acc_mean; /* accuracy */
    double recovered_zero, recovered_mean;         /* loss recovered against each ablation */
};

/* (ce_ablated - ce_sae) / (ce_ablated - ce_clean); NaN when the ablation
 * costs nothing (ce_ablated == ce_clean). */
double rn_sae_loss_recovered(double ce_clean, double ce_sae, double ce_ablated);

/* The model on h (n, d) with labels: clean, with h replaced by the SAE's
 * reconstruction, by zeros and by mean (d). */
int rn_sae_splice(struct rn_graph *g, int node, int logits, const struct rn_sae *s, const float *h,
                  size_t n, const uint8_t *labels, const float *mean, struct rn_sae_splice *out,
                  struct rn_error *err);

/* ---- feature tables ------------------------------------------------------------- */

enum rn_sae_feature_class {
    RN_SAE_DEAD,   /* never fired on the data */
    RN_SAE_COLOUR, /* colour-selective only */
    RN_SAE_DIGIT,  /* digit-selective only */
    RN_SAE_BOTH,   /* selective for both */
    RN_SAE_MIXED,  /* alive, selective for neither */
    RN_SAE_N_CLASSES
};
extern const char *const rn_sae_class_names[RN_SAE_N_CLASSES]; /* "dead", "colour", ... */

/* table (m, classes): the mean of codes (n, m) over the samples of each
 * class (labels[i] < classes; others are skipped; a class without samples
 * gets 0). firing (m, classes, may be NULL): the mean over only the samples
 * where the feature is > 0 (0 when it never fires there). */
int rn_sae_class_means(const float *codes, size_t n, int m, const uint8_t *labels, int classes,
                       float *table, float *firing, struct rn_error *err);

/* max / mean of a row of k class means; 0 when the mean is 0. */
double rn_sae_selectivity(const float *row, int k);

/* Per feature j: its selectivity for digits and colours, the class (dead
 * when alive[j] is 0, else by sel > threshold), and counts[c] the features
 * of class c. */
void rn_sae_classify(const float *digit_table, int k_digit, const float *colour_table, int k_colour,
                     const int *alive, int m, double threshold, float *sel_digit, float *sel_colour,
                     int32_t *cls, int counts[RN_SAE_N_CLASSES]);

/* order (m): the features for a heatmap: alive ones grouped by class
 * (colour, both, digit, mixed), within a class by the argmax of their table
 * (colour for colour and both, digit otherwise), then by that maximum,
 * largest first; dead features last. */
void rn_sae_feature_order(const float *digit_table, int k_digit, const float *colour_table,
                          int k_colour, const int32_t *cls, int m, int32_t *order);

/* The feature of class colour (or both) whose mean on colour q is largest;
 * when there is none, the alive feature with the largest mean on q (and
 * *selective = 0); -1 when no feature fires on q. */
int rn_sae_colour_feature(const float *colour_table, int k_colour, const int32_t *cls, int m, int q,
                          int *selective);

#endif
