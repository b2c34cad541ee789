# Freeze lme4's answers for vcheck's built-in examples.
#
#   Rscript r_reference/freeze.R [OUT_DIR] [NAME ...]
#
# For each example (r_reference/examples.R) writes OUT_DIR/<name>/data.csv (the data, doubles printed to
# round-trip exactly) and OUT_DIR/<name>/reference.json: the example (formula, REML, description), the
# column types needed to rebuild the data frame, lme4's design at its starting theta (lFormula), and every
# quantity of the fit (bridge.R's vcheck_collect), with R's, lme4's and Matrix's versions and the locale.
# OUT_DIR defaults to r_reference/frozen next to this script.  JSON numbers are written with up to 17
# significant digits (exact doubles); infinities as Infinity/-Infinity, NA as null.

vcheck_script_dir <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  file <- sub("^--file=", "", args[grepl("^--file=", args)])
  if (length(file)) dirname(normalizePath(file[[1L]])) else getwd()
}

here <- vcheck_script_dir()
source(file.path(here, "bridge.R"))
source(file.path(here, "examples.R"))

# ---- exact JSON --------------------------------------------------------------------------------------

vcheck_num <- function(x) {
  s <- sprintf("%.15g", x)
  inexact <- !is.na(x) & is.finite(x) & suppressWarnings(as.numeric(s)) != x
  s[inexact] <- sprintf("%.17g", x[inexact])
  s[is.na(x)] <- "null"
  s[is.nan(x)] <- "NaN"
  s[x == Inf & !is.na(x)] <- "Infinity"
  s[x == -Inf & !is.na(x)] <- "-Infinity"
  s
}

vcheck_json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    items <- vapply(x, vcheck_json, "")
    nm <- names(x)
    if (is.null(nm)) return(paste0("[", paste(items, collapse = ","), "]"))
    if (!length(x)) return("{}")
    keys <- vapply(nm, function(k) {
      s <- as.character(jsonlite::toJSON(k))
      substring(s, 2L, nchar(s) - 1L)
    }, "", USE.NAMES = FALSE)
    return(paste0("{", paste(paste0(keys, ":", items), collapse = ","), "}"))
  }
  if (is.factor(x)) x <- as.character(x)
  vals <- if (is.character(x)) {
    if (!length(x)) character(0) else {
      s <- vapply(x, function(v) as.character(jsonlite::toJSON(v, na = "null")), "", USE.NAMES = FALSE)
      substring(s, 2L, nchar(s) - 1L)
    }
  } else if (is.logical(x)) {
    ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else if (is.integer(x)) {
    ifelse(is.na(x), "null", as.character(x))
  } else if (is.double(x)) {
    vcheck_num(x)
  } else {
    stop("cannot write an object of class ", class(x)[[1L]], " as JSON")
  }
  paste0("[", paste(vals, collapse = ","), "]")
}

# ---- data ------------------------------------------------------------------------------------------

vcheck_column_spec <- function(x, name) {
  kind <- if (is.ordered(x)) "ordered" else if (is.factor(x)) "factor" else if (is.logical(x)) "bool" else
    if (is.integer(x)) "int" else if (is.double(x)) "float" else if (is.character(x)) "string" else
      stop("column '", name, "' has unsupported class ", class(x)[[1L]])
  list(name = name, kind = kind, levels = if (is.factor(x)) levels(x) else NULL,
       n_na = sum(is.na(x)))
}

vcheck_write_csv <- function(data, path) {
  out <- lapply(data, function(x) {
    if (is.double(x)) ifelse(is.na(x), NA_character_, vcheck_num(x)) else as.character(x)
  })
  out <- as.data.frame(out, stringsAsFactors = FALSE, optional = TRUE)
  names(out) <- names(data)
  utils::write.csv(out, path, row.names = FALSE, na = "NA", fileEncoding = "UTF-8")
}

# ---- freeze ----------------------------------------------------------------------------------------

vcheck_freeze_one <- function(ex, out_dir) {
  dir <- file.path(out_dir, ex$name)
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  data <- ex$data
  args_json <- if (length(ex$args)) as.character(jsonlite::toJSON(ex$args, auto_unbox = TRUE)) else ""
  fit <- vcheck_lmer(ex$formula, data, REML = ex$REML, extras = TRUE, args_json = args_json)
  if (!isTRUE(fit$ok)) stop(sprintf("example %s: lmer failed: %s", ex$name, fit$error))
  design <- vcheck_lformula(ex$formula, data, REML = ex$REML, args_json = args_json)
  if (!isTRUE(design$ok)) stop(sprintf("example %s: lFormula failed: %s", ex$name, design$error))
  ref <- list(
    format = 1L,
    example = c(list(name = ex$name, formula = ex$formula, REML = ex$REML, description = ex$description),
                if (nzchar(args_json)) list(args = args_json)),
    columns = unname(Map(vcheck_column_spec, data, names(data))),
    nrow = nrow(data),
    design = c(design$value, list(warnings = design$warnings, messages = design$messages)),
    fit = c(fit$value, list(warnings = fit$warnings, messages = fit$messages)),
    versions = vcheck_versions()
  )
  vcheck_write_csv(data, file.path(dir, "data.csv"))
  writeLines(vcheck_json(ref), file.path(dir, "reference.json"), useBytes = TRUE)
  cat(sprintf("%-26s n=%5d  criterion=%.6f  singular=%s\n", ex$name, fit$value$n, fit$value$criterion,
              fit$value$singular))
}

vcheck_freeze <- function(out_dir, which = character(0)) {
  exs <- vcheck_examples()
  if (length(which)) {
    unknown <- setdiff(which, names(exs))
    if (length(unknown)) stop("unknown example(s): ", paste(unknown, collapse = ", "))
    exs <- exs[which]
  }
  dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
  cat(sprintf("%s, lme4 %s, Matrix %s, LC_COLLATE=%s\n", R.version.string, packageVersion("lme4"),
              packageVersion("Matrix"), Sys.getlocale("LC_COLLATE")))
  for (ex in exs) vcheck_freeze_one(ex, out_dir)
  invisible(names(exs))
}

if (!interactive() && identical(sys.nframe(), 0L)) {
  args <- commandArgs(trailingOnly = TRUE)
  out_dir <- if (length(args)) args[[1L]] else file.path(here, "frozen")
  vcheck_freeze(out_dir, args[-1L])
}
