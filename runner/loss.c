/* loss.c - cross-entropy on logits, numerically stable (log-sum-exp). */
#include <math.h>
#include <string.h>

#include "loss.h"

double rn_cross_entropy(const struct rn_tensor *logits, const uint8_t *targets, float weight,
                        struct rn_tensor *dlogits, int *correct, float *probs)
{
    const int n = logits->n, k = (int)rn_tensor_sample(logits);
    double total = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits->data + (size_t)i * k;
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[arg])
                arg = j;
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += exp((double)z[j] - z[arg]);
        double lse = z[arg] + log(sum);
        total += lse - z[targets[i]];
        right += arg == targets[i];
        for (int j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse);
            if (probs)
                probs[(size_t)i * k + j] = (float)p;
            if (dlogits)
                dlogits->data[(size_t)i * k + j] +=
                    (float)(weight * (p - (j == targets[i])) / n);
        }
    }
    if (correct)
        *correct = right;
    return n ? total / n : 0;
}
