"""Public test kit: isolated service resources, process orchestration, envelope factories, personas."""
