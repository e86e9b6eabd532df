"""priorlab: image-prior experiments at scale.

One package, four rooms (see DESIGN.md): `priorlab.tasks` (pure PyTorch workloads),
`priorlab.analysis` (the results store and statistics), `priorlab.cluster` (everything Ray and
the CLI), `priorlab.dashboard` (the Streamlit app). Living under one name keeps generic module
names such as `tasks` or `analysis` free for the user's own code and plug-ins.
"""
