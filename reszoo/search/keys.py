"""The names under which a search keeps what it knows in an Optuna study.

The objective writes them, the samplers, the trial budget, the results and the
CLI read them: one module, so a renamed key cannot leave a reader behind. A
stored study outlives the code that wrote it, so a key, once written, keeps
its name.
"""

# ----------------------------------------------------- trial user attributes
SPEC = "spec"  # the net, as ArchSpec.to_dict()
DIGEST = "digest"  # its architecture digest
SUMMARY = "summary"  # one line naming it
PARAMS = "params"  # its parameter count
MACS = "macs"  # its multiply-accumulates per image
LATENCY_MS = "latency_ms"  # the judge's figure (see reszoo.latency.judge)
LATENCY_SOURCE = "latency_source"  # predicted, rough, measured or relative
FEASIBLE = "feasible"  # at most the limit: only then is the net trained
WORKER = "worker"  # {"host", "pid"} of the process that ran the trial
FAIL_REASON = "fail_reason"  # why a trial failed, in one line
SCORE = "score"  # what the study ranks (reszoo.search.proxy.SCORES)
ACCURACY = "accuracy"  # the proxy's validation top-1
TRAIN_LOSS = "train_loss"  # the proxy's last epoch's mean training loss
TRAIN_ERR = "train_err"
TRAIN_SECONDS = "train_seconds"

# --------------------------------------------------- trial system attributes
SCREENED = "reszoo:screened_draws"  # draws the latency screen dropped before this trial
REPEATED = "reszoo:repeated_draws"  # draws of nets the study already held, dropped before this trial
MACS_BUDGET = "reszoo:macs_budget"  # the training-cost budget the sampler held (None: no budget)
OVER_BUDGET = "reszoo:over_budget_draws"  # draws over it, dropped before this trial
FIXED_PARAMS = "fixed_params"  # Optuna's: an enqueued trial's parameters
#: Optuna's constraint values (feasible when all are <= 0), in the list form that
#: optuna-dashboard reads (Trial.set_constraint's per-name keys it does not).
CONSTRAINTS = "constraints"

# --------------------------------------------------------- study user attributes
SETTINGS = "reszoo"  # the settings the study started with (SearchConfig.settings())
REFERENCES = "references"  # the reference presets, scored on the same proxy
LIMIT_FROM = "limit_from"  # the spec of the reference whose latency is the limit (absent: a limit given in ms)
