/** The shared conformance suite against the in-memory fake, hermetic (also runs in the unit project). */
import '../../conformance/hypervisor/fake.test.js';
