"""Flows: one unit of work each (receiving tickets, a lifecycle action, the deadline sweep), composing the domain
services in one transaction. Entry points call flows; domain services never do."""
