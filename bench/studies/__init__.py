"""Studies over many results: leaderboards and reports, statistics, comparisons, regression
checks, sweeps, plots, results tables, harness performance and PEFT interchange. The top layer
below the command line."""
