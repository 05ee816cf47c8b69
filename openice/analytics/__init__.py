"""Portfolio analytics and disclosure metrics: one SQL definition per metric, run on DuckDB, PostgreSQL or Spark."""
