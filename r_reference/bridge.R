# vcheck's R side: build data frames from plain vectors, fit lme4, and return every quantity of one fit
# as a plain list (atomic vectors, lists, no S4 objects), so that rpy2 and jsonlite read the same schema.
#
# Sourced once into its own environment by vcheck/rbridge.py, and by freeze.R for the frozen references.
# Conventions of the returned list (see vcheck/record.py):
#   dense matrix  -> list(x = column-major values, dim = c(nrow, ncol))
#   sparse matrix -> list(i, p, x, Dim), a general CSC matrix (0-based i and p, as in dgCMatrix slots)
#   Lind          -> 0-based
#   every R error is caught and returned as list(ok = FALSE, error = message, call = call text),
#   so no error ever unwinds through the embedding and R stays usable.

suppressPackageStartupMessages({
  library(Matrix)
  library(lme4)
})

# ---- data in ---------------------------------------------------------------------------------------

# Build a data.frame from columns shipped one by one.  kinds: "float", "int", "bool", "string", "factor",
# "ordered"; levels[[j]] holds the level labels of factor columns (NULL otherwise).  Factor columns arrive
# as 1-based integer codes (NA for missing), so the level order is exactly the caller's.
vcheck_frame <- function(cols, kinds, levels, names) {
  n <- if (length(cols)) length(cols[[1L]]) else 0L
  out <- vector("list", length(cols))
  for (j in seq_along(cols)) {
    x <- cols[[j]]
    out[[j]] <- switch(kinds[[j]],
      float = { x[is.nan(x)] <- NA_real_; x },
      int = x,
      bool = as.logical(x),
      string = x,
      factor = structure(x, levels = levels[[j]], class = "factor"),
      ordered = structure(x, levels = levels[[j]], class = c("ordered", "factor")),
      stop(sprintf("unknown column kind '%s' for column '%s'", kinds[[j]], names[[j]]))
    )
  }
  structure(out, names = names, row.names = c(NA_integer_, -as.integer(n)), class = "data.frame")
}

# The formula's environment: the search path without the global environment, so a variable missing from
# the data is an error instead of something picked up from whatever sits in R's workspace.
vcheck_formula <- function(formula) {
  stats::as.formula(formula, env = new.env(parent = parent.env(globalenv())))
}

# ---- results out -----------------------------------------------------------------------------------

vcheck_dense <- function(M) {
  M <- as.matrix(M)
  list(x = as.vector(unname(M)) + 0, dim = as.integer(dim(M)))
}

# A general (not triangular, not symmetric) CSC matrix: a unit-triangular dtCMatrix keeps an empty
# diagonal in its slots, so it is coerced first.  dgCMatrix, the usual case, needs no coercion.
# `copy = TRUE` copies the values: lme4's C++ objects may later write into the memory of Lambdat@x.
vcheck_sparse <- function(M, copy = FALSE) {
  if (!identical(class(M)[[1L]], "dgCMatrix")) {
    M <- as(as(as(M, "generalMatrix"), "CsparseMatrix"), "dMatrix")
  }
  list(i = M@i, p = M@p, x = if (copy) M@x + 0 else M@x, Dim = M@Dim)
}

# How this R orders strings in sort() and factor(): byte order in the C/POSIX collation; otherwise, when
# R was built with ICU (Debian's is), ICU's collator (here "root": a < B < c < D, even under C.UTF-8),
# else the C library's strcoll for LC_COLLATE.
vcheck_collation <- function() {
  coll <- Sys.getlocale("LC_COLLATE")
  if (coll %in% c("C", "POSIX")) return("C (byte order)")
  if (isTRUE(capabilities("ICU"))) {
    icu <- tryCatch(icuGetCollate(), error = function(e) "unknown")
    return(paste0("ICU ", icu))
  }
  paste0("strcoll ", coll)
}

vcheck_versions <- function() {
  list(
    R = R.version.string,
    lme4 = as.character(utils::packageVersion("lme4")),
    Matrix = as.character(utils::packageVersion("Matrix")),
    locale = Sys.getlocale(),
    LC_COLLATE = Sys.getlocale("LC_COLLATE"),
    collation = vcheck_collation()
  )
}

# Versions cannot change within one R session, but the locale can: only the locale is read every time.
vcheck_versions_fast <- local({
  cache <- NULL
  function() {
    if (is.null(cache)) cache <<- vcheck_versions()
    cache$locale <- Sys.getlocale()
    cache$LC_COLLATE <- Sys.getlocale("LC_COLLATE")
    cache$collation <- vcheck_collation()
    cache
  }
})

vcheck_chr <- function(x) if (is.null(x)) character(0) else as.character(unlist(x))

vcheck_flist <- function(flist) {
  out <- lapply(flist, function(f) list(codes = as.integer(f), levels = levels(f)))
  names(out) <- names(flist)
  out
}

vcheck_cnms <- function(cnms) {
  lapply(seq_along(cnms), function(i) list(group = names(cnms)[[i]], names = as.character(cnms[[i]])))
}

vcheck_varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(grp = as.character(vc$grp), var1 = as.character(vc$var1), var2 = as.character(vc$var2),
       vcov = as.numeric(vc$vcov), sdcor = as.numeric(vc$sdcor))
}

# Conditional modes per grouping factor, with conditional variances as an (nlevels, nc, nc) array.  When a
# factor carries several terms (e.g. (x || g)), lme4 gives one variance block per term; the covariances
# between the terms' effects are not computed by lme4, so they are NA here (not zero).
vcheck_ranef <- function(m, condVar = TRUE) {
  re <- ranef(m, condVar = condVar)
  modes <- list()
  condvar <- list()
  for (g in names(re)) {
    df <- re[[g]]
    nl <- nrow(df)
    nc <- ncol(df)
    modes[[g]] <- list(levels = rownames(df), names = colnames(df), values = vcheck_dense(as.matrix(df)))
    if (!condVar) next
    pv <- attr(df, "postVar")
    full <- array(NA_real_, dim = c(nl, nc, nc))
    if (is.list(pv)) {
      at <- 0L
      for (block in pv) {
        k <- dim(block)[1L]
        idx <- at + seq_len(k)
        full[, idx, idx] <- aperm(block, c(3L, 1L, 2L))
        at <- at + k
      }
    } else {
      full[, , ] <- aperm(pv, c(3L, 1L, 2L))
    }
    condvar[[g]] <- list(x = as.vector(full), dim = as.integer(dim(full)))
  }
  list(ranef = modes, condVar = condvar)
}

# Every quantity of a fitted merMod.  `nrow_data` is the number of rows handed to lme4 (for the NA count).
# extras: TRUE adds vcov(beta), the conditional modes and their variances; "modes" only the conditional
# modes (ranef without condVar: the audit compares modes, and vcov + condVar cost more than the rest).
# `versions = FALSE` leaves the versions out (the live bridge reads them once per session).
vcheck_collect <- function(m, nrow_data, extras = TRUE, versions = TRUE) {
  # Slots and the pp/resp reference objects are read directly (what getME() returns, without its
  # per-call dispatch cost): X, Zt, Lambdat (at the fitted theta), Lind, y.
  pp <- m@pp
  X <- pp$X
  X_names <- colnames(X)
  cmp <- m@devcomp$cmp
  reml <- isREML(m)
  oi <- m@optinfo
  lme4conv <- oi$conv$lme4
  kept <- rownames(m@frame)
  dropped <- attr(X, "col.dropped")
  out <- list(
    REML = reml,
    n = as.integer(nrow(X)),
    X = vcheck_dense(X),
    X_names = as.character(X_names),
    y = as.numeric(m@resp$y),
    weights = as.numeric(m@resp$weights),  # prior weights (all 1 without weights=)
    offset = as.numeric(m@resp$offset),    # the offset= argument plus any offset() terms (0 without)
    mu = as.numeric(m@resp$mu),            # fitted values offset + X beta + Z b
    Zt = vcheck_sparse(pp$Zt),
    Lambdat = vcheck_sparse(pp$Lambdat),
    Lind = as.integer(pp$Lind) - 1L,
    theta = as.numeric(m@theta),
    lower = as.numeric(m@lower),
    cnms = vcheck_cnms(m@cnms),
    flist = vcheck_flist(m@flist),
    Gp = as.integer(m@Gp),
    beta = as.numeric(m@beta),
    sigma = as.numeric(sigma(m)),
    criterion = as.numeric(if (reml) cmp[["REML"]] else cmp[["dev"]]),
    logLik = as.numeric(logLik(m)),
    singular = isSingular(m),
    varcorr = vcheck_varcorr(m),
    optinfo = list(
      optimizer = as.character(if (is.null(oi$optimizer)) NA else oi$optimizer),
      feval = as.integer(if (is.null(oi$feval)) NA else oi$feval),
      message = as.character(if (is.null(oi$message)) NA else oi$message),
      conv_opt = as.integer(if (is.null(oi$conv$opt)) NA else oi$conv$opt),
      warnings = vcheck_chr(oi$warnings),
      lme4_messages = vcheck_chr(lme4conv$messages),
      lme4_code = as.integer(vcheck_chr(lme4conv$code)),
      theta_opt = as.numeric(unname(oi$val))
    ),
    n_na_dropped = length(attr(m@frame, "na.action")),
    row_index = as.integer(kept),
    na_action = vcheck_na_kind(m@frame),
    frame_rows = vcheck_frame_rows(m@frame),
    dropped_columns = vcheck_chr(names(dropped)),
    versions = if (isTRUE(versions)) vcheck_versions_fast() else NULL,
    vcov = NULL,
    ranef = NULL,
    condVar = NULL
  )
  if (isTRUE(extras)) {
    out$vcov <- vcheck_dense(as.matrix(vcov(m)))
    re <- vcheck_ranef(m)
    out$ranef <- re$ranef
    out$condVar <- re$condVar
  } else if (identical(extras, "modes")) {
    out$ranef <- vcheck_ranef(m, condVar = FALSE)$ranef
  }
  out
}

# The model frame's na.action: "na.omit" or "na.exclude" (the class of its "na.action" attribute, which
# R sets only when rows were dropped; "na.omit" otherwise).
vcheck_na_kind <- function(fr) {
  na <- attr(fr, "na.action")
  if (inherits(na, "exclude")) "na.exclude" else "na.omit"
}

# The data rows (1-based) of the model frame before NA rows were dropped (after subset=): the rows kept
# and the rows na.action dropped, in data order.  naresid() pads fitted values back to these rows.
vcheck_frame_rows <- function(fr) {
  sort(c(as.integer(rownames(fr)), as.integer(names(attr(fr, "na.action")))))
}

# With subset=, the frame's rows before NA removal are the data rows where the subset is TRUE or NA (R's
# `[` makes an all-NA row of an NA, named "NA", which na.action then drops): their data row numbers.
vcheck_subset_rows <- function(out, args, data, formula) {
  if (is.null(args$subset) || !isTRUE(out$ok)) return(out)
  s <- rep_len(eval(args$subset, data, environment(vcheck_formula(formula))), nrow(data))
  out$value$frame_rows <- which(s | is.na(s))
  out
}

vcheck_collect_design <- function(lf) {
  rt <- lf$reTrms
  dropped <- attr(lf$X, "col.dropped")
  list(
    X = vcheck_dense(lf$X),
    X_names = as.character(colnames(lf$X)),
    y = as.numeric(model.response(lf$fr)),
    # mkRespMod's prior weights and offset: the "(weights)" column, and model.offset() (the offset=
    # argument's "(offset)" column plus the formula's offset() terms); NULL when absent
    weights = if (is.null(w <- model.weights(lf$fr))) NULL else as.numeric(w),
    offset = if (is.null(o <- model.offset(lf$fr))) NULL else as.numeric(o),
    Zt = vcheck_sparse(rt$Zt),
    Lambdat = vcheck_sparse(rt$Lambdat, copy = TRUE),
    Lind = as.integer(rt$Lind) - 1L,
    theta = as.numeric(rt$theta) + 0,  # a copy: see vcheck_lformula
    lower = as.numeric(rt$lower),
    cnms = vcheck_cnms(rt$cnms),
    flist = vcheck_flist(rt$flist),
    Gp = as.integer(rt$Gp),
    row_index = as.integer(rownames(lf$fr)),
    n_na_dropped = length(attr(lf$fr, "na.action")),
    na_action = vcheck_na_kind(lf$fr),
    frame_rows = vcheck_frame_rows(lf$fr),
    dropped_columns = vcheck_chr(names(dropped)),
    versions = vcheck_versions_fast()
  )
}

# ---- calls with errors, warnings and messages captured ---------------------------------------------

# Evaluate `expr`; return list(ok, value, warnings, messages) or list(ok = FALSE, error, call, ...).
vcheck_try <- function(expr) {
  warnings <- character(0)
  messages <- character(0)
  value <- tryCatch(
    withCallingHandlers(expr,
      warning = function(w) {
        warnings <<- c(warnings, conditionMessage(w))
        invokeRestart("muffleWarning")
      },
      message = function(m) {
        messages <<- c(messages, sub("\n$", "", conditionMessage(m)))
        invokeRestart("muffleMessage")
      }
    ),
    error = function(e) {
      call <- conditionCall(e)
      structure(list(
        ok = FALSE, error = conditionMessage(e),
        call = if (is.null(call)) "" else paste(deparse(call, nlines = 1L), collapse = " ")
      ), class = "vcheck_error")
    }
  )
  if (inherits(value, "vcheck_error")) {
    return(c(unclass(value), list(warnings = warnings, messages = messages)))
  }
  list(ok = TRUE, value = value, warnings = warnings, messages = messages)
}

# lmer's further arguments from vcheck (a JSON object, "" for none), as R code would pass them: weights,
# offset and subset are expressions evaluated in the data (column names; arrays arrive as data columns),
# na.action a function name, contrasts a named list, start a vector or list(theta = ), control the
# result of lmerControl(...) with optCtrl a list.
vcheck_call_args <- function(args_json) {
  if (is.null(args_json) || !nzchar(args_json)) return(list())
  a <- jsonlite::fromJSON(args_json, simplifyVector = TRUE, simplifyDataFrame = FALSE)
  out <- list()
  if (!is.null(a$weights)) out$weights <- as.name(a$weights)
  if (!is.null(a$offset)) out$offset <- as.name(a$offset)
  if (!is.null(a$subset)) out$subset <- str2lang(a$subset)
  if (!is.null(a$na.action)) out$na.action <- as.name(a$na.action)
  if (!is.null(a$contrasts)) out$contrasts <- as.list(a$contrasts)
  if (!is.null(a$start)) {
    out$start <- if (is.list(a$start)) list(theta = as.numeric(a$start$theta)) else as.numeric(a$start)
  }
  if (!is.null(a$control)) {
    ctrl <- a$control
    if (!is.null(ctrl$optCtrl)) ctrl$optCtrl <- as.list(ctrl$optCtrl)
    out$control <- do.call(lmerControl, ctrl)
  }
  out
}

vcheck_lmer_fit <- function(formula, data, REML = TRUE, args = list()) {
  if (is.null(args$control)) args$control <- lmerControl()
  do.call(lmer, c(list(vcheck_formula(formula), data = data, REML = REML), args))
}

# lFormula with lmer's arguments (start is mkLmerDevfun's, not lFormula's)
vcheck_lformula_call <- function(formula, data, REML = TRUE, args = list()) {
  args$start <- NULL
  do.call(lFormula, c(list(vcheck_formula(formula), data = data, REML = REML), args))
}

vcheck_devfun_call <- function(lf, args = list()) {
  extra <- list()
  if (!is.null(args$start)) extra$start <- args$start
  if (!is.null(args$control)) extra$control <- args$control
  do.call(mkLmerDevfun, c(lf, extra))
}

# lme4's model at a fixed theta, without optimizing: the deviance function evaluated once at theta, then
# mkMerMod reads beta, sigma and the criterion from the state that evaluation left in its environment.
vcheck_fit_at_theta_model <- function(formula, data, theta, REML = TRUE, args = list()) {
  lf <- vcheck_lformula_call(formula, data, REML, args)
  dfun <- vcheck_devfun_call(lf, args)
  theta <- as.numeric(theta)
  if (length(theta) != length(lf$reTrms$theta)) {
    stop(sprintf("theta has length %d, the model has %d variance parameters",
                 length(theta), length(lf$reTrms$theta)))
  }
  fval <- dfun(theta)
  opt <- list(par = theta, fval = fval, conv = 0L, feval = 1L,
              message = "fixed theta: deviance evaluated once, no optimization")
  mkMerMod(environment(dfun), opt, lf$reTrms, fr = lf$fr)
}

vcheck_lmer <- function(formula, data, REML = TRUE, extras = TRUE, versions = TRUE, args_json = "") {
  args <- list()
  out <- vcheck_try({
    args <- vcheck_call_args(args_json)
    vcheck_collect(vcheck_lmer_fit(formula, data, REML, args), nrow(data), extras, versions)
  })
  vcheck_subset_rows(out, args, data, formula)
}

vcheck_fit_at_theta <- function(formula, data, theta, REML = TRUE, extras = TRUE, versions = TRUE,
                                args_json = "") {
  args <- list()
  out <- vcheck_try({
    args <- vcheck_call_args(args_json)
    vcheck_collect(vcheck_fit_at_theta_model(formula, data, theta, REML, args), nrow(data), extras, versions)
  })
  vcheck_subset_rows(out, args, data, formula)
}

# lFormula's design; theta_start is where lmer's optimizer starts: mkLmerDevfun replaces lFormula's theta
# (1 on diagonals) by sqrt(var(ave(y, f)) / v_e) when every term is a scalar intercept on its own factor.
vcheck_lformula <- function(formula, data, REML = TRUE, args_json = "") {
  args <- list()
  out <- vcheck_try({
    args <- vcheck_call_args(args_json)
    lf <- vcheck_lformula_call(formula, data, REML, args)
    out <- vcheck_collect_design(lf)
    # mkLmerDevfun's merPredD writes the start into reTrms' theta and Lambdat@x IN PLACE (its C++ side
    # maps R's memory), so the design above must hold copies (vcheck_collect_design makes them).
    out$theta_start <- as.numeric(environment(vcheck_devfun_call(lf, args))$pp$theta) + 0
    out
  })
  vcheck_subset_rows(out, args, data, formula)
}

vcheck_devfun <- function(formula, data, REML = TRUE, args_json = "") {
  vcheck_try({
    args <- vcheck_call_args(args_json)
    vcheck_devfun_call(vcheck_lformula_call(formula, data, REML, args), args)
  })
}

vcheck_versions_try <- function() vcheck_try(vcheck_versions())

vcheck_call_devfun <- function(f, theta) vcheck_try(as.numeric(f(as.numeric(theta))))

# ---- one flat value for the embedding --------------------------------------------------------------

# Reading a nested R list through rpy2 costs tens of microseconds per vector and per string; a fit has
# about a hundred of them.  vcheck_pack flattens any nested list of atomic vectors into four vectors:
#   tokens: one string, a preorder walk separated by "\x1f": "D" k (name value)*k | "L" k value*k | "N" |
#           "d" len | "i" len | "b" len | "s" len   (named list, list, NULL, double, integer, logical, string)
#   num:    all doubles, in walk order;  int: all integers and logicals (NA as NA);
#   chr:    all strings in one, separated by "\x1f", NA written as "\x1e".
# vcheck/rbridge.py's unpack() rebuilds the nested value.
vcheck_pack <- function(x) {
  tokens <- character(0)
  num <- list()
  int <- list()
  chr <- list()
  walk <- function(v) {
    if (is.null(v)) {
      tokens[[length(tokens) + 1L]] <<- "N"
    } else if (is.list(v)) {
      nm <- names(v)
      tokens[[length(tokens) + 1L]] <<- if (is.null(nm)) "L" else "D"
      tokens[[length(tokens) + 1L]] <<- as.character(length(v))
      for (k in seq_along(v)) {
        if (!is.null(nm)) tokens[[length(tokens) + 1L]] <<- nm[[k]]
        walk(v[[k]])
      }
    } else {
      if (is.factor(v)) v <- as.character(v)
      code <- if (is.double(v)) "d" else if (is.integer(v)) "i" else if (is.logical(v)) "b" else
        if (is.character(v)) "s" else stop("vcheck_pack: cannot pack an object of class ", class(v)[[1L]])
      tokens[[length(tokens) + 1L]] <<- code
      tokens[[length(tokens) + 1L]] <<- as.character(length(v))
      v <- as.vector(v)
      if (code == "d") num[[length(num) + 1L]] <<- v
      else if (code == "s") chr[[length(chr) + 1L]] <<- ifelse(is.na(v), "\x1e", v)
      else int[[length(int) + 1L]] <<- as.integer(v)
    }
  }
  walk(x)
  list(tokens = paste(tokens, collapse = "\x1f"), num = as.double(unlist(num)),
       int = as.integer(unlist(int)), chr = paste(unlist(chr), collapse = "\x1f"))
}
