/* summary.c - the model as a table (summary.h). */
#include "summary.h"

#include <string.h>

size_t rn_summary_node_params(const struct rn_graph *g, int i)
{
    const struct rn_layer *l = &g->nodes[i].layer;
    size_t n = 0;
    for (int j = 0; j < l->n_params; j++)
        if (l->params[j].trainable)
            n += rn_tensor_numel(&l->params[j].value);
    return n;
}

int64_t rn_summary_node_flops(const struct rn_graph *g, int i)
{
    const struct rn_layer *l = &g->nodes[i].layer;
    return l->type->flops ? l->type->flops(l) : 0;
}

int64_t rn_summary_flops(const struct rn_graph *g)
{
    int64_t n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += rn_summary_node_flops(g, i);
    return n;
}

static void rule(FILE *f, int width)
{
    for (int i = 0; i < width; i++)
        fputc('-', f);
    fputc('\n', f);
}

void rn_summary_print(FILE *f, const struct rn_graph *g, const char *model)
{
    int wn = (int)strlen("total"), wt = (int)strlen("type");
    for (int i = 0; i < g->n_nodes; i++) {
        const struct rn_layer *l = &g->nodes[i].layer;
        if ((int)strlen(l->name) > wn)
            wn = (int)strlen(l->name);
        if ((int)strlen(l->type->name) > wt)
            wt = (int)strlen(l->type->name);
    }
    const int width = wn + 2 + wt + 2 + 16 + 12 + 12;
    fprintf(f, "model '%s': input (%d,%d,%d), %d nodes\n", model, g->in_shape.c, g->in_shape.h,
            g->in_shape.w, g->n_nodes);
    rule(f, width);
    fprintf(f, "%-*s  %-*s  %-16s%12s%12s\n", wn, "node", wt, "type", "output", "params", "MFLOP");
    rule(f, width);
    size_t params = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct rn_layer *l = &g->nodes[i].layer;
        char shape[48];
        snprintf(shape, sizeof shape, "(%d,%d,%d)", l->out.c, l->out.h, l->out.w);
        size_t p = rn_summary_node_params(g, i);
        params += p;
        fprintf(f, "%-*s  %-*s  %-16s%12zu%12.3f\n", wn, l->name, wt, l->type->name, shape, p,
                (double)rn_summary_node_flops(g, i) / 1e6);
    }
    rule(f, width);
    fprintf(f, "%-*s  %-*s  %-16s%12zu%12.3f\n", wn, "total", wt, "", "", params,
            (double)rn_summary_flops(g) / 1e6);
    rule(f, width);
    fputs("params: trainable scalars (weights and biases; running statistics are not counted)\n"
          "MFLOP: forward floating-point operations per image / 1e6; a multiply-add counts as 2 "
          "FLOPs\n"
          "       (conv: 2*Cin*k*k*Cout*Hout*Wout, plus Cout*Hout*Wout with a bias); a "
          "comparison,\n"
          "       addition or scaling 1 per element; dropout, grl and flatten 0\n",
          f);
}
