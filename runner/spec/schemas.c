/* spec/schemas.c - the key schemas of the spec's own sections: checked by
 * check*.c, written back by resolved.c, documented by reference.c. Layer and
 * analysis types declare theirs in their registries. */
#include "internal.h"

static const struct rn_key top_keys[] = {
    {"device", RN_KIND_CHOICE, 0, 0, "auto", 1, 0, "auto|cpu|cuda",
     "where to run; auto = cuda when available"},
    {"threads", RN_KIND_INT, 0, 0, NULL, 0, 4096, NULL, "CPU threads; 0 = all cores"},
    {"deterministic", RN_KIND_BOOL, 0, 0, NULL, 0, 1, NULL,
     "bitwise-reproducible kernels, even where slower"},
    {"out", RN_KIND_STRING, 0, 0, "results", 1, 0, NULL,
     "results root, relative to the working directory"},
};
static const struct extra_key top_extra[] = {
    {"name", "string", "file name without .yaml",
     "experiment name (results/<name>/...); never inherited through extends"},
    {"description", "string", "\"\"", "free text, at most 1023 characters"},
    {"extends", "path", "none",
     "spec this one is based on, relative to this file; deep merge, this file wins, lists are "
     "replaced, `key: ~` deletes an inherited key"},
    {"seed", "integer", "0", "run seed in [0, 2^64-1]"},
    {"data", "section", "all defaults", "the dataset (below)"},
    {"model", "section", "none", "the network; without it the experiment is data-only"},
    {"train", "section", "none", "how to train the model (excludes load)"},
    {"load", "section", "none", "take the trained model from an earlier run (excludes train)"},
    {"analyses", "list", "[]", "analyses to run after training/loading (below)"},
};

static const struct rn_key data_keys[] = {
    {"source", RN_KIND_CHOICE, 0, 0, "mnist", 1, 0, "mnist|fashion_mnist", "dataset"},
    {"dir", RN_KIND_STRING, 0, 0, "data/mnist", 1, 0, NULL,
     "folder with the four IDX files (raw or .gz); relative to the working directory, not "
     "the spec file"},
    {"colouring", RN_KIND_CHOICE, 0, 0, "background", 1, 0, "none|background|stroke",
     "what gets the digit's colour; none = grey 1-channel images"},
    {"threshold", RN_KIND_INT, 0, 50, NULL, 0, 255, NULL, "foreground: intensity > threshold"},
    {"palette", RN_KIND_CHOICE, 0, 0, "study", 1, 0, "study", "colour of each digit"},
    {"bias", RN_KIND_FLOAT, 0, 0.95, NULL, 0, 1, NULL,
     "P(a digit gets its own colour) in the easy (train/val) set"},
    {"test_rule", RN_KIND_CHOICE, 0, 0, "conflicting", 1, 0, "conflicting|random|aligned",
     "colour of the hard test set: any other colour, any colour, or the digit's own"},
    {"val_fraction", RN_KIND_FLOAT, 0, 0.1, NULL, 0, 0.9, NULL,
     "share of the easy set held out as val"},
    {"train_limit", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "use the first k MNIST train images (0 = all)"},
    {"test_limit", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "use the first k MNIST test images (0 = all)"},
};
static const struct extra_key data_extra[] = {
    {"texture", "[number, number]", "[0.4, 1.0]",
     "noise range [lo, hi], 0 <= lo <= hi <= 1; [1, 1] = flat colour"},
    {"seed", "integer", "the top-level seed", "seed of the colouring and the split"},
};

static const struct rn_key model_keys[] = {
    {"name", RN_KIND_STRING, 0, 0, "model", 1, 0, NULL, "architecture name"},
};
static const struct extra_key model_extra[] = {
    {"include", "path", "none",
     "model file (a mapping with only name and layers), relative to the including file; keys "
     "written next to include win"},
    {"layers", "list", "required", "the layers, in order (see Layer types)"},
};

static const struct rn_key train_keys[] = {
    {"epochs", RN_KIND_INT, 0, 1, NULL, 1, UNBOUNDED, NULL, "passes over the train split"},
    {"batch", RN_KIND_INT, 0, 64, NULL, 1, UNBOUNDED, NULL, "training batch size"},
    {"eval_batch", RN_KIND_INT, 0, 256, NULL, 1, UNBOUNDED, NULL, "evaluation batch size"},
    {"optimizer", RN_KIND_CHOICE, 0, 0, "adam", 1, 0, RN_OPTIM_CHOICES, "optimizer"},
    {"lr", RN_KIND_FLOAT, 0, 1e-3, NULL, 0, UNBOUNDED, NULL, "learning rate"},
    {"beta1", RN_KIND_FLOAT, 0, 0.9, NULL, 0, 1, NULL, "Adam beta1"},
    {"beta2", RN_KIND_FLOAT, 0, 0.999, NULL, 0, 1, NULL, "Adam beta2"},
    {"eps", RN_KIND_FLOAT, 0, 1e-8, NULL, 0, 1, NULL, "Adam epsilon"},
    {"weight_decay", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "weight decay; when not given 0, or 0.01 for adamw"},
    {"momentum", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "SGD momentum"},
    {"clip_norm", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "clip the global gradient norm first (torch clip_grad_norm_); 0 = off"},
    {"shuffle", RN_KIND_BOOL, 0, 1, NULL, 0, 1, NULL, "reshuffle the train split every epoch"},
    {"log_every", RN_KIND_INT, 0, 10, NULL, 1, UNBOUNDED, NULL,
     "steps between step-metric records"},
    {"checkpoint_epochs", RN_KIND_INT, 0, 1, NULL, 0, UNBOUNDED, NULL,
     "write the full training state (checkpoint.h5 in the run folder) every this many epochs "
     "and after the last; 0 = not at epoch ends"},
    {"checkpoint_steps", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "also write it every this many training steps; 0 = off"},
    {"on_nonfinite", RN_KIND_CHOICE, 0, 0, "stop", 1, 0, "stop|skip",
     "a NaN or Inf loss or gradient: stop the run there (status failed), or skip the step "
     "(counted: nonfinite_skipped in run.h5)"},
};
static const struct extra_key train_extra[] = {
    {"losses", "list", "[{type: cross_entropy, target: digit}]",
     "loss terms, summed with their weights (see Loss terms)"},
    {"eval", "list of train|val|test", "[val, test]", "splits evaluated after every epoch"},
    {"groups", "mapping name: [node, ...]", "{}",
     "named parameter groups by node name; `colour_*` matches a prefix, a basic_block's name "
     "its expanded nodes"},
    {"optimizers", "list", "one optimizer from the keys above over every parameter, named main",
     "optimizers, each over its groups (see Optimizers); the keys optimizer, lr, beta1, beta2, "
     "eps, weight_decay, momentum and clip_norm above then apply to nothing"},
    {"schedules", "list", "[]",
     "named scalar functions of training progress p = step / total steps (see Schedules)"},
    {"bind", "list of {node, key, schedule}", "[]",
     "layer keys driven by a schedule, set before every step (e.g. a grl's alpha)"},
    {"program", "list", "one step: every loss, every optimizer",
     "what one batch does, in order (see Program steps)"},
    {"augment", "list", "[]",
     "augmentations of the training batches (see Augmentations); val and test are never "
     "augmented"},
};

static const struct rn_key loss_keys[] = {
    {"type", RN_KIND_CHOICE, 1, 0, NULL, 1, 0, RN_LOSS_CHOICES,
     "loss function; neg_cross_entropy is the penalty -CE (a head the features should fool)"},
    {"name", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
     "unique name (program steps and metrics loss/<name>); \"\" = the target for "
     "cross_entropy, neg_<target>, saliency"},
    {"on", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, "node whose output are the logits; \"\" = last"},
    {"target", RN_KIND_CHOICE, 0, 0, "digit", 1, 0, RN_TARGET_CHOICES,
     "labels to predict: the digit, or the colour the generator drew (never the digit)"},
    {"norm", RN_KIND_CHOICE, 0, 0, "l1", 1, 0, "l1|l2",
     "saliency: per pixel, sum of |g| over channels (l1) or its Euclidean norm (l2)"},
    {"reduce", RN_KIND_CHOICE, 0, 0, "mean_background", 1, 0, "mean_background|background_share",
     "saliency: mean over background pixels, or background share of the total (scale-free)"},
    {"threshold", RN_KIND_FLOAT, 0, 0.95, NULL, 0, 1, NULL,
     "saliency: background pixels are those with min(R,G,B) < threshold"},
};
static const struct extra_key loss_extra[] = {
    {"weight", "number >= 0 or schedule name", "1",
     "factor of this term; a schedule name makes it follow that schedule"},
};

static const struct rn_key optimizer_keys[] = {
    {"name", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "unique name, used by program steps"},
    {"type", RN_KIND_CHOICE, 0, 0, "adam", 1, 0, RN_OPTIM_CHOICES, "optimizer"},
    {"beta1", RN_KIND_FLOAT, 0, 0.9, NULL, 0, 1, NULL, "Adam beta1"},
    {"beta2", RN_KIND_FLOAT, 0, 0.999, NULL, 0, 1, NULL, "Adam beta2"},
    {"eps", RN_KIND_FLOAT, 0, 1e-8, NULL, 0, 1, NULL, "Adam epsilon"},
    {"weight_decay", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "weight decay; when not given 0, or 0.01 for adamw"},
    {"momentum", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "SGD momentum"},
    {"clip_norm", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "clip the global gradient norm of this optimizer's parameters first "
     "(torch clip_grad_norm_); 0 = off"},
};
static const struct extra_key optimizer_extra[] = {
    {"lr", "number >= 0 or schedule name", "1e-3",
     "learning rate; a schedule name makes it follow that schedule"},
    {"groups", "list of group names", "every parameter",
     "parameter groups (train.groups) this optimizer updates; required when there are several "
     "optimizers"},
};

static const struct extra_key schedule_extra[] = {
    {"name", "string", "required",
     "unique name, not a number; used by a loss weight, an optimizer lr and bind"},
    {"type", "choice", "required", "constant, linear, dann_sigmoid or step (below)"},
};

static const struct rn_key bind_keys[] = {
    {"node", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "node whose key the schedule drives"},
    {"key", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "a number key of that node's layer type (grl: alpha)"},
    {"schedule", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "schedule name"},
};

static const struct rn_key step_keys[] = {
    {"repeat", RN_KIND_INT, 0, 1, NULL, 1, 1000, NULL, "sub-steps made of this entry"},
};
static const struct extra_key step_extra[] = {
    {"optimizer", "name or list of names", "every optimizer",
     "optimizers that update after the backward (the default optimizer is called main)"},
    {"losses", "list of loss names", "every loss term",
     "terms whose gradients this step backpropagates"},
    {"set", "mapping node.key: number", "{}",
     "layer keys set for this step only, e.g. {grl.alpha: 0}"},
};

static const struct rn_key jitter_keys[] = {
    {"brightness", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL, "factor ~ U(max(0, 1-b), 1+b)"},
    {"contrast", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL, "factor ~ U(max(0, 1-c), 1+c)"},
    {"saturation", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL, "factor ~ U(max(0, 1-s), 1+s)"},
    {"hue", RN_KIND_FLOAT, 0, 0, NULL, 0, 0.5, NULL, "hue shift ~ U(-h, h), through HSV"},
};
static const struct extra_key augment_extra[] = {
    {"type", "choice", "required",
     "channel_permute (a random RGB permutation per sample, no keys) or colour_jitter "
     "(torchvision ColorJitter, keys below)"},
};

static const struct rn_key load_keys[] = {
    {"run", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "run.h5 or its run directory, relative to the working directory"},
    {"model", RN_KIND_STRING, 0, 0, "main", 1, 0, NULL, "model name inside the run's /models"},
    {"if_missing", RN_KIND_CHOICE, 0, 0, "error", 1, 0, "error|train",
     "when `run` does not exist: fail, or train with the spec's train section"},
};

static const struct extra_key layer_extra[] = {
    {"type", "choice", "required", "layer type (the sections below)"},
    {"name", "string", "\"\"", "node name, unique in the model; \"\" = generated"},
    {"from", "name or [name, name]", "previous node", "input node(s)"},
};
static const struct extra_key analysis_extra[] = {
    {"type", "choice", "required", "analysis type (the sections below)"},
    {"name", "string", "the type name", "unique name; results go to /analyses/<name>"},
};

#define SECTION(keys, extra)                                                                       \
    {                                                                                              \
        keys, COUNT(keys), extra, COUNT(extra)                                                     \
    }
#define KEYS_ONLY(keys)                                                                            \
    {                                                                                              \
        keys, COUNT(keys), NULL, 0                                                                 \
    }
#define EXTRA_ONLY(extra)                                                                          \
    {                                                                                              \
        NULL, 0, extra, COUNT(extra)                                                               \
    }

const struct section sec_top = SECTION(top_keys, top_extra);
const struct section sec_data = SECTION(data_keys, data_extra);
const struct section sec_model = SECTION(model_keys, model_extra);
const struct section sec_train = SECTION(train_keys, train_extra);
const struct section sec_loss = SECTION(loss_keys, loss_extra);
const struct section sec_optimizer = SECTION(optimizer_keys, optimizer_extra);
const struct section sec_schedule = EXTRA_ONLY(schedule_extra);
const struct section sec_bind = KEYS_ONLY(bind_keys);
const struct section sec_step = SECTION(step_keys, step_extra);
const struct section sec_augment = EXTRA_ONLY(augment_extra);
const struct section sec_jitter = SECTION(jitter_keys, augment_extra);
const struct section sec_load = KEYS_ONLY(load_keys);
const struct section sec_layer = EXTRA_ONLY(layer_extra);
const struct section sec_analysis = EXTRA_ONLY(analysis_extra);

const struct augment_type augment_types[] = {
    {"channel_permute", &sec_augment},
    {"colour_jitter", &sec_jitter},
};
const int n_augment_types = COUNT(augment_types);
