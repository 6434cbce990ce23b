"""Federated fine-tuning of a language model (issue 34): peft adapters on a frozen base, Flower
strategies (FedAvg, clustered, hierarchical, asynchronous) over the shared wireless channel."""
