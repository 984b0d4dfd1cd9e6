/* What changes weights: STDP rules (engine side); losses and optimizers (ANN side). */
#ifndef SB_LEARNING_H
#define SB_LEARNING_H
#include "sim/core.h"

/* ======================================================================================
 * ANN side: losses and optimizers (sb_loss_*, sb_opt_*). Plain float32 arrays; each loss
 * returns the mean loss (double) and writes the gradient of that mean w.r.t. its input.
 * ====================================================================================== */

/* Softmax cross-entropy on logits (N, C) with integer labels (N) in 0..C-1, mean over N.
 * dlogits (N, C) = (softmax(logits) - onehot) / N (may be NULL). `correct` (may be NULL)
 * receives the count of rows whose argmax equals the label.
 * Source: torch.nn.CrossEntropyLoss (log-sum-exp shifted by the row maximum). */
double sb_loss_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int C, int *correct);

/* Binary cross-entropy with logits, mean over n: l = max(z,0) - z t + log(1 + exp(-|z|)),
 * targets t in [0,1]; dz = (sigmoid(z) - t) / n (may be NULL).
 * Source: torch.nn.BCEWithLogitsLoss (the numerically stable form). */
double sb_loss_bce_logits(float *dz, const float *z, const float *t, size_t n);

/* Binary cross-entropy on probabilities p in [0,1], mean over n, logs clamped at -100 as
 * torch.nn.BCELoss does: l = -(t log p + (1-t) log(1-p)); dp = (p - t) / (p (1-p)) / n with
 * the denominator floored at 1e-12. */
double sb_loss_bce(float *dp, const float *p, const float *t, size_t n);

/* Mean squared error over n values: l = mean((y - t)^2); dy = 2 (y - t) / n (may be NULL).
 * Source: torch.nn.MSELoss(reduction="mean"). */
double sb_loss_mse(float *dy, const float *y, const float *t, size_t n);

typedef enum { SB_OPT_SGD = 0, SB_OPT_ADAM, SB_OPT_ADAMW } sb_opt_kind;

/* An optimizer over one flat parameter buffer of n floats (llm.c): its state (momentum, or
 * Adam's m and v) has the same layout as the parameters. */
typedef struct {
  sb_opt_kind kind;
  size_t n;
  double lr;            /* learning rate (the schedule changes it between steps) */
  double momentum;      /* SGD: heavy-ball momentum mu (0 = plain SGD) */
  double beta1, beta2;  /* Adam: 0.9, 0.999 */
  double eps;           /* Adam: 1e-8 */
  double weight_decay;  /* SGD and Adam: L2 added to the gradient (torch); AdamW: decoupled */
  long t;               /* steps taken */
  float *m;             /* (n) SGD momentum buffer, or Adam first moment; owned */
  float *v;             /* (n) Adam second moment (NULL for SGD); owned */
} sb_opt;

/* Allocate an optimizer for n parameters with torch's defaults for the kind (lr 1e-3 for Adam,
 * 1e-2 for SGD, momentum 0, betas 0.9/0.999, eps 1e-8, no weight decay); the caller then sets
 * fields. Ownership: sb_opt_free. Returns NULL with SB_ENOMEM set on failure. */
sb_opt *sb_opt_alloc(sb_opt_kind kind, size_t n);
void sb_opt_free(sb_opt *o);
/* Parse "sgd", "adam", "adamw"; -1 if unknown. */
int sb_opt_kind_parse(const char *name);

/* One update of params (n) from grads (n), exactly as torch.optim.SGD / Adam / AdamW (1.13):
 *   SGD:   g += wd p; b = mu b + g (b = g on the first step); p -= lr b
 *   Adam:  g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          p -= lr m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW: p *= 1 - lr wd, then Adam without the L2 term.
 * OpenMP over the buffer. */
void sb_opt_step(sb_opt *o, float *params, const float *grads);

/* Learning rate for `epoch` (0-based) of `epochs`: "none" lr0; "cosine"
 * lr0 (1 + cos(pi epoch / epochs)) / 2 (torch CosineAnnealingLR with eta_min 0, per epoch);
 * "step" lr0 gamma^floor(epoch / step_epochs) (torch StepLR). Unknown names give lr0. */
double sb_lr_schedule(const char *kind, double lr0, int epoch, int epochs, double gamma, int step_epochs);

/* ======================================================================================
 * Engine side: STDP rules (sb_stdp_*) -- added by the plasticity issue below this line.
 * ====================================================================================== */

#endif
