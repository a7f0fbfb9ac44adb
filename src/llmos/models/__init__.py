"""Models: the zoo of packaged weights, builders of task models, PEFT wrapping, save/load."""
