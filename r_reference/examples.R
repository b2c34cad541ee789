# vcheck's built-in examples: for each, the data (built exactly here, seeded where random), the lme4
# formula, REML or ML, and one line saying what part of lme4's syntax or behaviour it exercises.
#
# vcheck_examples() returns a named list of list(name, formula, REML, data, description).  Data frames
# keep automatic row names; column types are whatever the example needs (double, integer, logical,
# character, factor, ordered factor) and freeze.R records them so Python rebuilds the same frame.

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
  library(dplyr)
})

# `args`: lmer's further arguments in the form bridge.R's vcheck_call_args reads (weights and offset as
# column names, subset as R code, na.action as a function name, contrasts, start, control as a list of
# lmerControl's arguments).  Examples with args are listed apart in Python (examples.argument_names()).
vcheck_example <- function(name, formula, data, REML = TRUE, description = "", args = list()) {
  data <- as.data.frame(data)
  rownames(data) <- NULL
  list(name = name, formula = formula, REML = REML, data = data, description = description, args = args)
}

# sleepstudy with lme4's tests/priorWeightsModComp.R weights (seed 0: w = 1 / (rpois(n, 1) + 1)), an
# offset column, and NA in the response and in Days for the na.action examples.
vcheck_sleep_args_data <- function() {
  sleep <- get("sleepstudy", envir = asNamespace("lme4"))
  set.seed(0)
  sleep$w <- 1 / (rpois(nrow(sleep), 1) + 1)
  sleep$o <- 2.5 * sleep$Days
  sleep
}

vcheck_sleep_na_data <- function() {
  sleep <- vcheck_sleep_args_data()
  sleep$Reaction[c(1, 50)] <- NA
  sleep$Days[100] <- NA
  sleep$w[120] <- NA
  sleep
}

# The seed note's simulated three-level data, generated exactly as the note does.
vcheck_three_level_data <- function() {
  n1 <- 5; n2 <- 3; n3 <- 10
  sch <- letters[1:10]
  tch <- 1:30
  sch.cl <- rep(sch, each = n1 * n2)
  tch.cl <- rep(tch, each = n1)
  set.seed(123)
  e3 <- rep(rnorm(n1), each = n1 * n2)
  e2 <- rep(rnorm(n2 * n1), each = n1)
  x1 <- rnorm(n1 * n2 * n3)
  e1 <- rnorm(n1 * n2 * n3)
  y <- e3 + e2 + .5 * x1 + e1
  data.frame(y, sch.cl, tch.cl, e3, e2, x1, e1)
}

# The seed note's kindergarten sample of mlmRev's star data (20%, drawn after set.seed(123)).
vcheck_star_k_data <- function() {
  star <- get("star", envir = asNamespace("mlmRev"))
  set.seed(123)
  konly <- filter(star, gr == "K") %>% sample_frac(.2)
  # Keep the columns the examples use plus a few of every type; drop the 11,598-level student id.
  konly[, c("sch", "tch", "cltype", "sx", "hdeg", "ses", "exp", "read", "math")]
}

# Three nested levels with inner labels reused across outer groups (classroom "1" exists in every
# school), mixed-case string codes (C collation sorts "B" before "a"), and a few missing covariates.
vcheck_nested3_data <- function() {
  set.seed(20240501)
  district <- c("a", "B", "c", "D")
  rows <- expand.grid(pupil = 1:4, class = c("1", "2", "10"), school = c("s1", "S2", "s3"),
                      district = district, stringsAsFactors = FALSE)
  key_s <- paste(rows$district, rows$school)
  key_c <- paste(key_s, rows$class)
  u_d <- rnorm(length(district), sd = 1.0)[match(rows$district, district)]
  u_s <- rnorm(length(unique(key_s)), sd = 0.7)[match(key_s, unique(key_s))]
  u_c <- rnorm(length(unique(key_c)), sd = 0.5)[match(key_c, unique(key_c))]
  x <- round(rnorm(nrow(rows)), 3)
  y <- 2 + 0.4 * x + u_d + u_s + u_c + rnorm(nrow(rows), sd = 0.8)
  x[c(5, 77, 140)] <- NA
  d <- data.frame(y = y, x = x, district = rows$district, school = rows$school, class = rows$class,
                  stringsAsFactors = FALSE)
  d[sample(nrow(d)), ]
}

# A 3-level factor f with a random effect per level within g: slopes on a factor.
vcheck_factor_slope_data <- function() {
  set.seed(4242)
  g <- sprintf("g%02d", 1:12)
  f <- c("A", "B", "C")
  rows <- expand.grid(rep = 1:5, f = f, g = g, stringsAsFactors = FALSE)
  L <- matrix(c(1.0, 0.0, 0.0,
                0.5, 0.8, 0.0,
                -0.3, 0.2, 0.6), 3, 3, byrow = TRUE)
  u <- matrix(rnorm(12 * 3), 12, 3) %*% t(L)
  x <- round(runif(nrow(rows), 0, 10), 2)
  fi <- match(rows$f, f)
  gi <- match(rows$g, g)
  y <- 10 + c(0, 1.5, -1)[fi] + 0.3 * x + u[cbind(gi, fi)] + rnorm(nrow(rows), sd = 0.5)
  d <- data.frame(y = y, x = x, f = factor(rows$f, levels = f), g = factor(rows$g, levels = rev(g)))
  d[sample(nrow(d)), ]
}

# No intercept in the fixed part, a logical covariate, and integer group codes.
vcheck_no_intercept_data <- function() {
  set.seed(777)
  n_g <- 15
  per <- 8
  g <- rep(seq_len(n_g) * 3L, each = per)
  arm <- factor(rep(c("ctl", "low", "high"), length.out = n_g * per), levels = c("ctl", "low", "high"))
  treated <- rep(c(TRUE, FALSE), length.out = n_g * per)
  u <- rnorm(n_g, sd = 1.2)[match(g, unique(g))]
  y <- c(5, 6, 7.5)[as.integer(arm)] + 0.8 * treated + u + rnorm(n_g * per)
  d <- data.frame(y = y, arm = arm, treated = treated, g = g)
  d[sample(nrow(d)), ]
}

# A rank-deficient fixed part: x2 is exactly 2 * x, so lme4 drops x2.
vcheck_rank_deficient_data <- function() {
  set.seed(99)
  g <- rep(sprintf("c%d", 1:10), each = 6)
  x <- round(rnorm(60), 2)
  u <- rnorm(10)[match(g, unique(g))]
  data.frame(y = 1 + x + u + rnorm(60), x = x, x2 = 2 * x, g = g, stringsAsFactors = FALSE)
}

vcheck_examples <- function() {
  sleep <- get("sleepstudy", envir = asNamespace("lme4"))
  set.seed(2024)
  shuffled <- sleep[sample(nrow(sleep)), ]
  shuffled$Subject <- as.integer(as.character(shuffled$Subject))
  ex <- list(
    vcheck_example("sleepstudy", "Reaction ~ Days + (Days|Subject)", sleep,
                   description = "seed 1: one grouping factor, correlated random intercept and slope"),
    vcheck_example("three_level", "y ~ x1 + (1|sch.cl/tch.cl)", vcheck_three_level_data(),
                   description = "seed 2: simulated three-level data, nested (1|a/b), character and integer codes"),
    vcheck_example("star_k", "read ~ cltype + sx + (sx|sch/tch)", vcheck_star_k_data(),
                   description = "seed 3: kindergarten star sample; nested factor slopes, NA rows, singular fit"),
    vcheck_example("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)",
                   get("Penicillin", envir = asNamespace("lme4")),
                   description = "crossed random intercepts"),
    vcheck_example("pastes", "strength ~ 1 + (1|batch/cask)", get("Pastes", envir = asNamespace("lme4")),
                   description = "nested (1|a/b) with inner labels reused across outer groups"),
    vcheck_example("dyestuff2", "Yield ~ 1 + (1|Batch)", get("Dyestuff2", envir = asNamespace("lme4")),
                   description = "singular fit: the batch variance is estimated as zero"),
    vcheck_example("sleepstudy_ml", "Reaction ~ Days + (Days|Subject)", sleep, REML = FALSE,
                   description = "maximum likelihood (REML = FALSE)"),
    vcheck_example("sleepstudy_uncorrelated", "Reaction ~ Days + (Days||Subject)", sleep,
                   description = "double bar: (1|g) + (0+x|g), uncorrelated intercept and slope"),
    vcheck_example("sleepstudy_shuffled", "Reaction ~ 1 + Days + (1 + Days|Subject)", shuffled,
                   description = "rows in random order, integer subject codes"),
    vcheck_example("sleepstudy_transformed", "log(Reaction) ~ Days + I(Days^2) + (1|Subject)", sleep,
                   description = "functions in the formula: log() response, I() term"),
    vcheck_example("cake", "angle ~ recipe * temperature + (1|recipe:replicate)",
                   get("cake", envir = asNamespace("lme4")),
                   description = "a*b with an ordered factor (contr.poly), (1|a:b), integer response"),
    vcheck_example("nested3", "y ~ x + (1|district/school/class)", vcheck_nested3_data(),
                   description = "(1|a/b/c), reused inner labels, mixed-case strings, unsorted rows, NA in x"),
    vcheck_example("factor_slope", "y ~ f + x + (f|g)", vcheck_factor_slope_data(),
                   description = "factor slope (f|g): (Intercept), fB, fC per group; reversed level order"),
    vcheck_example("factor_slope_0", "y ~ f + (0 + f|g)", vcheck_factor_slope_data(),
                   description = "factor slope without intercept (0+f|g): full dummies"),
    vcheck_example("no_intercept", "y ~ 0 + arm + treated + (1|g)", vcheck_no_intercept_data(),
                   description = "0+ in the fixed part, logical covariate, integer group codes"),
    vcheck_example("rank_deficient", "y ~ x + x2 + (1|g)", vcheck_rank_deficient_data(),
                   description = "rank-deficient X: lme4 drops x2 by pivoted QR"),
    vcheck_example("star_k_ml", "math ~ cltype + hdeg + exp + (1|sch) + (1|tch)", vcheck_star_k_data(),
                   REML = FALSE,
                   description = "ML; ordered factor with unused levels in X (contr.poly); crossed-as-nested"),
    vcheck_example("sleepstudy_weights", "Reaction ~ Days + (Days|Subject)", vcheck_sleep_args_data(),
                   REML = FALSE, args = list(weights = "w"),
                   description = "prior weights (lme4's tests/priorWeightsModComp.R, seed 0), ML"),
    vcheck_example("sleepstudy_offset", "Reaction ~ Days + (Days|Subject)", vcheck_sleep_args_data(),
                   args = list(offset = "o", subset = "Days >= 1 & Subject != \"308\""),
                   description = "an offset column and a subset expression"),
    vcheck_example("sleepstudy_na_exclude", "Reaction ~ Days + (1|Subject)", vcheck_sleep_na_data(),
                   args = list(weights = "w", na.action = "na.exclude"),
                   description = "na.exclude with NA in the response, a covariate and the weights"),
    vcheck_example("sleepstudy_bobyqa", "Reaction ~ Days + (Days|Subject)", vcheck_sleep_args_data(),
                   args = list(weights = "w", control = list(optimizer = "bobyqa")),
                   description = "a non-default optimizer: minqa's bobyqa, on a weighted model"),
    vcheck_example("penicillin_nelder_mead", "diameter ~ 1 + (1|plate) + (1|sample)",
                   get("Penicillin", envir = asNamespace("lme4")),
                   args = list(control = list(optimizer = "Nelder_Mead")),
                   description = "a non-default optimizer: lme4's own Nelder_Mead, crossed intercepts"),
    vcheck_example("cake_contr_sum", "angle ~ recipe + temperature + (1|recipe:replicate)",
                   get("cake", envir = asNamespace("lme4")),
                   args = list(contrasts = list(recipe = "contr.sum")),
                   description = "contrasts = list(recipe = contr.sum) for the fixed effects")
  )
  names(ex) <- vapply(ex, `[[`, "", "name")
  ex
}
