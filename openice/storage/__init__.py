"""Infrastructure only: the engine, units of work, day numbers, the direct statement path, the table modules, the
schema Alembic sees and the migrations. It imports no stage; each stage's repositories live in the stage."""
