"""Lab-report tooling: report generator, result tables, plots, speed-up study, baseline, benchmarks."""
