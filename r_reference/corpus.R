## corpus.R: record every Gaussian lmer() call that one file of lme4's sources makes.
##
##   Rscript r_reference/corpus.R SRC_DIR OUT_DIR RELATIVE_FILE
##
## SRC_DIR is a checkout of lme4's sources (tests/, man/, vignettes/, inst/, data/).  The file is a test
## script (tests/*.R, tests/testthat/test-*.R), an Rd page (man/*.Rd: its examples) or a vignette
## (vignettes/*.Rnw, *.Rmd: its evaluated chunks).  `lmer` is replaced (in the global environment, the lme4
## namespace and the attached package) by a recorder that writes, for each call, the formula, REML, every
## other argument (deparsed, and evaluated where vcheck needs the values), the data the formula uses
## (written once per content hash under OUT_DIR/data/), then calls the installed lme4's real lmer and writes
## its outputs (or its error), one JSON line per call, to OUT_DIR/calls/<file>.jsonl.
## glmer()/nlmer() are not recorded.  Each top-level expression runs on its own: an error (lme4 2.x
## syntax, a missing package) is written to the log and the next expression runs.
## `python -m vcheck.reference.corpus --regenerate SRC_DIR` runs this over every file and builds
## r_reference/corpus/ from the records.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(testthat)
})

.cargs <- commandArgs(trailingOnly = TRUE)
stopifnot(length(.cargs) == 3L)
.corpus <- new.env()
.corpus$src <- normalizePath(.cargs[[1]])
.corpus$out <- .cargs[[2]]
.corpus$file <- .cargs[[3]]
.corpus$line <- NA_integer_
.corpus$seq <- 0L
.corpus$max_bytes <- 5e6
.corpus$orig <- lme4::lmer
dir.create(file.path(.corpus$out, "data"), recursive = TRUE, showWarnings = FALSE)
dir.create(file.path(.corpus$out, "calls"), recursive = TRUE, showWarnings = FALSE)
.corpus$jsonl <- file.path(.corpus$out, "calls", paste0(gsub("[/.]", "_", .corpus$file), ".jsonl"))
if (file.exists(.corpus$jsonl)) file.remove(.corpus$jsonl)
writeLines(jsonlite::toJSON(list(
  R = R.version.string, lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")), collation = Sys.getlocale("LC_COLLATE")
), auto_unbox = TRUE), file.path(.corpus$out, "versions.json"))

.corpus$deparse <- function(x) paste(deparse(x, width.cutoff = 500L), collapse = " ")

## a value as plain JSON-able data (functions and language deparsed)
.corpus$plain <- function(x) {
  if (is.null(x)) return(NULL)
  if (is.function(x) || is.language(x)) return(list(deparsed = .corpus$deparse(x)))
  if (is.factor(x)) return(list(factor = as.character(x), levels = levels(x)))
  if (is.matrix(x)) return(list(matrix = as.vector(x), dim = dim(x), dimnames = dimnames(x)))
  if (is.list(x)) {
    out <- lapply(x, .corpus$plain)
    if (!is.null(names(x))) names(out) <- names(x)
    return(out)
  }
  if (is.atomic(x)) {
    if (!is.null(names(x))) return(list(names = names(x), values = unname(x)))
    return(x)
  }
  list(deparsed = .corpus$deparse(x))
}

.corpus$na_action_name <- function(f) {
  for (nm in c("na.omit", "na.exclude", "na.fail", "na.pass")) {
    if (identical(f, get(nm, envir = asNamespace("stats")))) return(nm)
  }
  if (is.character(f)) return(f)
  NULL
}

## write the columns the call uses; return list(hash, spec) or list(skipped = reason)
.corpus$write_data <- function(d, cols) {
  d <- as.data.frame(d)[, cols, drop = FALSE]
  for (nm in names(d)) {
    col <- d[[nm]]
    if (!is.atomic(col) || (!is.null(dim(col)) && length(dim(col)) > 1L))
      return(list(skipped = sprintf("column '%s' is a %s, not a vector", nm, class(col)[[1]])))
  }
  size <- as.numeric(object.size(d))
  if (size > .corpus$max_bytes)
    return(list(skipped = sprintf("data set of %.1f MB (over %.0f MB)", size / 1e6, .corpus$max_bytes / 1e6)))
  spec <- lapply(names(d), function(nm) {
    col <- d[[nm]]
    type <- if (is.ordered(col)) "ordered" else if (is.factor(col)) "factor" else
      if (is.logical(col)) "logical" else if (is.integer(col)) "integer" else
      if (is.numeric(col)) "numeric" else if (is.character(col)) "character" else class(col)[[1]]
    list(name = nm, type = type, levels = if (is.factor(col)) levels(col) else NULL,
         na = sum(is.na(col)))
  })
  text <- d
  for (nm in names(text)) {
    col <- text[[nm]]
    if (is.double(col)) text[[nm]] <- ifelse(is.na(col), NA, sprintf("%.17g", col))
    else if (is.factor(col)) text[[nm]] <- as.character(col)
  }
  tmp <- tempfile(fileext = ".csv")
  utils::write.csv(text, tmp, row.names = FALSE, na = "NA")
  spec_json <- jsonlite::toJSON(list(nrow = nrow(d), columns = spec), auto_unbox = TRUE, null = "null")
  both <- tempfile()
  writeLines(c(readLines(tmp), spec_json), both)
  hash <- substr(unname(tools::md5sum(both)), 1, 16)
  unlink(both)
  target <- file.path(.corpus$out, "data", hash)
  if (!file.exists(paste0(target, ".csv"))) {
    file.copy(tmp, paste0(target, ".csv"))
    writeLines(spec_json, paste0(target, ".json"))
  }
  unlink(tmp)
  list(hash = hash)
}

.corpus$caller_line <- function() .corpus$line

## the lme4 functions (other than update) on the call stack: a call made by lme4 itself (influence(),
## allFit(), profile(), bootMer() refitting) names the outermost one
.corpus$via <- function() {
  ns <- asNamespace("lme4")
  out <- character()
  for (i in seq_len(sys.nframe())) {
    f <- sys.function(i)
    if (is.function(f) && identical(environment(f), ns)) {
      head <- sys.call(i)[[1]]
      name <- if (is.name(head)) as.character(head) else .corpus$deparse(head)
      if (!name %in% c("update", "update.merMod", "lmer", "lme4::lmer")) out <- c(out, name)
    }
  }
  if (length(out)) out[[1]] else NULL
}

.corpus$describe <- function(mc, env) {
  rec <- list()
  f <- eval(mc$formula, env)
  if (is.character(f)) f <- stats::as.formula(f)
  if (inherits(f, "merMod")) f <- stats::formula(f)
  rec$formula <- .corpus$deparse(f)
  rec$formula_expr <- .corpus$deparse(mc$formula)
  rec$REML <- if (is.null(mc$REML)) TRUE else as.logical(eval(mc$REML, env))
  d <- if (is.null(mc$data)) NULL else eval(mc$data, env)
  rec$data_expr <- if (is.null(mc$data)) NULL else .corpus$deparse(mc$data)
  extra <- setdiff(names(mc)[-1], c("formula", "data", "REML"))
  rec$args <- structure(list(), names = character())
  needed <- all.vars(f)
  fenv <- environment(f)
  if (is.null(fenv)) fenv <- env
  for (nm in extra) {
    expr <- mc[[nm]]
    a <- list(expr = .corpus$deparse(expr))
    val <- tryCatch(
      if (nm %in% c("weights", "offset", "subset")) eval(expr, if (is.null(d)) NULL else as.data.frame(d), env)
      else eval(expr, env),
      error = function(e) structure(conditionMessage(e), class = "corpus_error"))
    if (inherits(val, "corpus_error")) {
      a$eval_error <- unclass(val)
    } else if (nm %in% c("weights", "offset")) {
      a$value <- as.numeric(val)
    } else if (nm == "subset") {
      a$value <- if (is.logical(val)) val else as.numeric(val)
      needed <- c(needed, all.vars(expr))
    } else if (nm == "na.action") {
      a$value <- .corpus$na_action_name(val)
    } else if (nm %in% c("control", "start", "contrasts", "verbose", "devFunOnly")) {
      a$value <- .corpus$plain(if (inherits(val, "merControl")) unclass(val) else val)
    } else {
      a$value <- tryCatch(.corpus$plain(val), error = function(e) NULL)
    }
    rec$args[[nm]] <- a
  }
  if (is.null(d)) {
    vars <- unique(all.vars(f))
    cols <- lapply(vars, function(v) tryCatch(get(v, envir = fenv), error = function(e) NULL))
    names(cols) <- vars
    cols <- cols[!vapply(cols, is.null, TRUE)]
    d <- tryCatch(as.data.frame(cols, stringsAsFactors = FALSE), error = function(e) NULL)
    rec$data_from <- "formula environment"
  } else {
    rec$data_from <- "data argument"
  }
  if (is.null(d)) {
    rec$data <- list(skipped = "no data frame could be built from the formula's environment")
  } else {
    d <- as.data.frame(d)
    cols <- if ("." %in% all.vars(f)) names(d) else intersect(names(d), unique(needed))
    rec$data <- tryCatch(.corpus$write_data(d, cols), error = function(e) list(skipped = conditionMessage(e)))
    rec$data$nrow_data <- nrow(d)
  }
  rec
}

.corpus$outputs <- function(res) {
  if (inherits(res, "error")) return(list(status = "error", error = conditionMessage(res)))
  if (is.function(res)) return(list(status = "devfun"))
  if (!is(res, "merMod")) return(list(status = "other", class = class(res)[[1]]))
  if (!is(res, "lmerMod")) return(list(status = "not gaussian", class = class(res)[[1]]))
  cmp <- res@devcomp$cmp
  th <- getME(res, "theta")
  be <- fixef(res)
  list(
    status = "fitted",
    theta = unname(th), theta_names = names(th),
    beta = unname(be), beta_names = names(be),
    sigma = sigma(res), isREML = isREML(res),
    REML = unname(cmp[["REML"]]), deviance = unname(cmp[["dev"]]),
    criterion = if (isREML(res)) unname(cmp[["REML"]]) else unname(cmp[["dev"]]),
    logLik = as.numeric(logLik(res)),
    nobs = nobs(res), ngrps = as.list(ngrps(res)),
    X_colnames = colnames(getME(res, "X")),
    col_dropped = names(attr(getME(res, "X"), "col.dropped")),
    feval = res@optinfo$feval, optimizer = res@optinfo$optimizer,
    conv = res@optinfo$conv$opt,
    lme4_messages = unlist(res@optinfo$conv$lme4$messages),
    optinfo_warnings = unlist(res@optinfo$warnings)
  )
}

.corpus$write <- function(rec) {
  line <- jsonlite::toJSON(rec, auto_unbox = TRUE, digits = NA, null = "null", na = "null", force = TRUE)
  cat(line, "\n", file = .corpus$jsonl, append = TRUE, sep = "")
}

lmer <- function(formula, data = NULL, REML = TRUE, control = lmerControl(), start = NULL, verbose = 0L,
                 subset, weights, na.action, offset, contrasts = NULL, devFunOnly = FALSE, ...) {
  call <- sys.call()
  env <- parent.frame()
  mc <- match.call()
  .corpus$seq <- .corpus$seq + 1L
  rec <- list(source = list(file = .corpus$file, line = .corpus$caller_line(), seq = .corpus$seq,
                            via = .corpus$via()),
              call = .corpus$deparse(call))
  desc <- tryCatch(.corpus$describe(mc, env), error = function(e) list(describe_error = conditionMessage(e)))
  rec <- c(rec, desc)
  warns <- character()
  msgs <- character()
  call[[1]] <- .corpus$orig
  res <- withCallingHandlers(
    tryCatch(eval(call, env), error = function(e) e),
    warning = function(w) warns <<- c(warns, conditionMessage(w)),
    message = function(m) msgs <<- c(msgs, conditionMessage(m))
  )
  rec$lme4 <- c(tryCatch(.corpus$outputs(res), error = function(e) list(status = "unreadable",
                                                                        error = conditionMessage(e))),
                list(warnings = warns, messages = msgs))
  .corpus$write(rec)
  if (inherits(res, "error")) stop(res)
  if (is(res, "merMod")) res@call[[1]] <- quote(lmer)
  res
}

local({
  ns <- asNamespace("lme4")
  unlockBinding("lmer", ns)
  assign("lmer", get("lmer", envir = globalenv()), envir = ns)
  pkg <- as.environment("package:lme4")
  unlockBinding("lmer", pkg)
  assign("lmer", get("lmer", envir = globalenv()), envir = pkg)
})

## testthat, as a runner that never stops: every expectation only evaluates its arguments
.corpus$force_all <- function(...) {
  for (i in seq_len(...length())) try(...elt(i), silent = TRUE)
  invisible(NULL)
}
for (.nm in grep("^expect_", getNamespaceExports("testthat"), value = TRUE)) assign(.nm, .corpus$force_all)
test_that <- function(desc, code) {
  e <- new.env(parent = parent.frame())
  code <- substitute(code)
  refs <- attr(code, "srcref")
  stmts <- if (is.call(code) && identical(code[[1]], as.name("{"))) as.list(code)[-1] else list(code)
  tryCatch(for (i in seq_along(stmts)) {
    if (!is.null(refs) && length(refs) > i) .corpus$line <- refs[[i + 1L]][[1]]
    eval(stmts[[i]], e)
  }, error = function(err) message(sprintf("[corpus] test_that(%s): %s", desc, conditionMessage(err))))
  invisible(NULL)
}
context <- function(...) invisible(NULL)
skip_on_cran <- function(...) invisible(NULL)
skip_on_os <- function(...) invisible(NULL)
skip_if <- function(condition, message = "") if (isTRUE(condition)) stop("skipped: ", message)
skip_if_not <- function(condition, message = "") if (!isTRUE(condition)) stop("skipped: ", message)
skip_if_not_installed <- function(pkg, ...) if (!requireNamespace(pkg, quietly = TRUE)) stop("skipped: no ", pkg)
skip <- function(message = "") stop("skipped: ", message)
if (!exists("lme4_testlevel", envir = asNamespace("lme4"))) lme4_testlevel <- function() 1

## lme4 2.x test data and data sets the installed lme4 lacks
system.file <- function(..., package = "base", lib.loc = NULL, mustWork = FALSE) {
  if (identical(package, "lme4")) {
    p <- file.path(.corpus$src, "inst", ...)
    if (length(list(...)) && file.exists(p)) return(p)
  }
  base::system.file(..., package = package, lib.loc = lib.loc, mustWork = mustWork)
}
local({
  have <- utils::data(package = "lme4")$results[, "Item"]
  for (rda in list.files(file.path(.corpus$src, "data"), pattern = "\\.rda$", full.names = TRUE)) {
    nm <- sub("\\.rda$", "", basename(rda))
    if (!nm %in% have) load(rda, envir = globalenv())
  }
})

## the code of the file, with line numbers of the original where the format allows
.corpus$code_lines <- function(path) {
  ext <- tolower(tools::file_ext(path))
  lines <- readLines(path, warn = FALSE)
  if (ext == "r") return(lines)
  if (ext == "rd") {
    tmp <- tempfile(fileext = ".R")
    tools::Rd2ex(path, tmp, commentDontrun = TRUE, commentDonttest = FALSE)
    return(if (file.exists(tmp)) readLines(tmp, warn = FALSE) else character())
  }
  out <- rep("", length(lines))
  inside <- FALSE
  for (i in seq_along(lines)) {
    l <- lines[[i]]
    if (ext == "rnw") {
      if (!inside && grepl("^<<.*>>=", l)) { inside <- TRUE; keep <- !grepl("eval *= *F(ALSE)?", l); next }
      if (inside && grepl("^@", l)) { inside <- FALSE; next }
    } else {
      if (!inside && grepl("^```\\{r", l)) { inside <- TRUE; keep <- !grepl("eval *= *F(ALSE)?", l); next }
      if (inside && grepl("^```", l)) { inside <- FALSE; next }
    }
    if (inside && keep) out[[i]] <- l
  }
  out
}

local({
  path <- file.path(.corpus$src, .corpus$file)
  dir <- dirname(path)
  setwd(dir)
  if (basename(dir) == "testthat" && file.exists("setup.R")) try(sys.source("setup.R", envir = globalenv()))
  code <- .corpus$code_lines(path)
  exprs <- parse(text = code, keep.source = TRUE, srcfile = srcfilecopy(.corpus$file, code))
  refs <- attr(exprs, "srcref")
  for (i in seq_along(exprs)) {
    .corpus$line <- refs[[i]][[1]]
    r <- tryCatch(eval(exprs[[i]], globalenv()), error = function(e)
      message(sprintf("[corpus] %s:%d: %s", .corpus$file, .corpus$line, conditionMessage(e))))
  }
})
