"""Demo and benchmark data: ``seed_demo`` fills an empty database with departments, employees,
the tag taxonomy, grants, rules and customers with events. It seeds every app, so it sits above
them all and nothing imports it."""
