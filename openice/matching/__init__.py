"""Fund matching: institutions as data, vectorised credit boxes, real-time routing and batch optimisation."""
