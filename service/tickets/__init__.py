# the report rollup learns of every ticket write, and a moved clock clears its stored 临期 instants
# (service/tickets/changes.py and warn_instants.py register on import)
from service.tickets import changes as changes
from service.tickets import warn_instants as warn_instants
