"""The live dashboard: today's sales per store pushed to the browser, history from Postgres, an ops panel."""
