"""One adapter per wire protocol. Each has a sans-I/O ``protocol`` core and a thin ``adapter``."""
