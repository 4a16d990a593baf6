/* spec/overrides.c - command-line overrides "a.b.3.c=value" applied to the tree. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- overrides --------------------------------------------------------------- */

int is_index(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The value of "a.b=value": YAML when it starts like a flow collection or a
 * quoted scalar, otherwise the text as written (so "description=a: b" works). */
static struct node *override_value(struct loader *L, const char *text, const char *value)
{
    if (strchr("[{\"'", value[0]) && value[0]) {
        yaml_parser_t p;
        if (!yaml_parser_initialize(&p)) {
            report_oom(L);
            return NULL;
        }
        yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
        struct source S = {L, &p, NULL, text};
        struct node *n = parse_stream(&S, 0);
        yaml_parser_delete(&p);
        if (n)
            set_origin(n, text);
        return n;
    }
    return scalar_new(L, value, strlen(value), 1, NULL, text, 0, 0);
}

/* Applies one override to the tree. only_include: apply it only if its path is
 * model.include (those must act before the include is read); otherwise only if
 * it is not. */
void apply_override(struct loader *L, struct node *root, const char *text,
                           int only_include)
{
    const char *eq = strchr(text, '=');
    char path[512];
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof path) {
        if (!only_include)
            report_override(L, text, "expected key.path=value");
        return;
    }
    memcpy(path, text, (size_t)(eq - text));
    path[eq - text] = '\0';
    if (path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, "..")) {
        if (!only_include)
            report_override(L, text, "expected key.path=value");
        return;
    }
    if (only_include != !strcmp(path, "model.include"))
        return;

    struct node *value = override_value(L, text, eq + 1);
    if (!value)
        return;
    struct node *cur = root;
    char walked[512] = "";
    char *save = NULL;
    for (char *seg = strtok_r(path, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        int last = save == NULL || *save == '\0';
        if (cur->kind == NODE_SEQ) {
            long idx = is_index(seg) ? strtol(seg, NULL, 10) : -1;
            if (idx < 0 || idx >= cur->n) {
                report_override(L, text, "'%s' has %d item%s; '%s' is not an index 0..%d",
                                walked, cur->n, cur->n == 1 ? "" : "s", seg, cur->n - 1);
                node_free(value);
                return;
            }
            if (last) {
                node_free(cur->items[idx]);
                cur->items[idx] = value;
                return;
            }
            cur = cur->items[idx];
        } else if (cur->kind == NODE_MAP) {
            int i;
            struct node *child = map_get(cur, seg, &i);
            if (last) {
                if (child) {
                    node_free(child);
                    cur->items[i] = value;
                } else {
                    struct node *k = scalar_new(L, seg, strlen(seg), 0, NULL, text, 0, 0);
                    if (!k) {
                        node_free(value);
                        return;
                    }
                    node_push(L, cur, k, value);
                }
                return;
            }
            if (!child || (child->kind == NODE_SCALAR && child->is_null)) {
                /* A section the file does not write (or leaves empty): create it;
                 * checking the keys later says whether the schema knows it. */
                struct node *m = node_new(L, NODE_MAP, NULL, text, 0, 0);
                if (!m) {
                    node_free(value);
                    return;
                }
                if (child) {
                    node_free(child);
                    cur->items[i] = m;
                } else {
                    struct node *k = scalar_new(L, seg, strlen(seg), 0, NULL, text, 0, 0);
                    if (!k || node_push(L, cur, k, m)) {
                        if (!k)
                            node_free(m);
                        node_free(value);
                        return;
                    }
                }
                child = m;
            }
            cur = child;
        } else {
            report_override(L, text, "'%s' is a single value, not a mapping or list", walked);
            node_free(value);
            return;
        }
        size_t len = strlen(walked);
        snprintf(walked + len, sizeof walked - len, "%s%s", len ? "." : "", seg);
    }
    node_free(value); /* not reached: the last segment returns */
}

