"""An example bench plugin (README "Extending bench"): the method `pt-scaled` and the task
`polarity`, registered through the `bench.methods` and `bench.tasks` entry points."""
