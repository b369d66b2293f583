"""Application services: the logic behind each function, with AWS behind tollgate.ports."""
