/* loss.h - loss terms: the registry of loss types and of the targets a term
 * predicts (the only lists of either; spec and program code use the enums).
 * The terms themselves are computed by runner/program.c (cross-entropy through
 * rn_cross_entropy or a backend kernel, saliency through runner/saliency.h). */
#ifndef RN_LOSS_H
#define RN_LOSS_H

enum rn_loss_kind { RN_LOSS_CE, RN_LOSS_NEG_CE, RN_LOSS_SALIENCY };
enum rn_target { RN_TARGET_DIGIT, RN_TARGET_COLOR };

struct rn_loss_type {
    const char *name; /* as written in a spec: "cross_entropy" */
    enum rn_loss_kind kind;
    const char *doc;
};
extern const struct rn_loss_type rn_loss_types[]; /* in enum order */
extern const int rn_n_loss_types;
/* NULL when name is not a registered loss type. */
const struct rn_loss_type *rn_loss_type_find(const char *name);

extern const char *const rn_target_names[]; /* in enum order: "digit", "color" */
extern const int rn_n_targets;
/* The enum of a target name, or -1. */
int rn_target_find(const char *name);

/* The registries' names in order, as a schema's choices; a test checks that
 * they agree. */
#define RN_LOSS_CHOICES "cross_entropy|neg_cross_entropy|saliency"
#define RN_TARGET_CHOICES "digit|color"

#endif
