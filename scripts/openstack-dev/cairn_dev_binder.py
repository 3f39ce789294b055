"""An ML2 mechanism driver for the development OpenStack of scripts/openstack-dev.sh.

No Neutron agent runs there (no Open vSwitch, no OVN), so no shipped mechanism driver
binds a port and Nova would refuse every server with a port ("binding failed"). This one
binds every port of a flat network to a tap device (`vif_type = tap`): Nova's libvirt
driver creates the tap itself and the guest gets a NIC attached to nothing. Addresses
come from Neutron's IPAM as usual; no traffic flows. A development aid only.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class TapBinder(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_TAP,
                                {portbindings.CAP_PORT_FILTER: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
