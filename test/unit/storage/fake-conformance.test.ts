/** The object-store conformance suite against the in-memory fake (hermetic, unit project). */
import { createObjectStore, FakeObjectStore } from '../../../adapters/storage/index.js';
import { objectStoreConformance } from '../../conformance/storage/object-store.conformance.js';

const PART = 5 * 1024 * 1024;
let fake: FakeObjectStore | undefined;

objectStoreConformance({
  name: 'fake',
  async create() {
    const store = createObjectStore('fake', { name: 'conformance', region: 'eu-west', partSizeBytes: PART, capacityBytes: 512 * 1024 * 1024 });
    fake = store as FakeObjectStore;
    return store;
  },
  async createUnreachable() {
    const store = new FakeObjectStore({ name: 'down', region: 'eu-west', partSizeBytes: PART, capacityBytes: 1024 });
    store.faults.unavailable = true;
    return store;
  },
  partSizeBytes: PART,
  async pendingUploads() {
    return fake!.pendingUploads();
  },
  async leaveUpload(bucket, key) {
    fake!.leaveUpload(bucket, key);
  },
  async rawExists(bucket, key) {
    return (await fake!.listObjects(bucket, { prefix: key })).objects.some((o) => o.key === key);
  },
  async fill() {
    fake!.faults.full = true;
    return async () => { fake!.faults.full = false; };
  },
  async corrupt(bucket, key) {
    fake!.corruptObject(bucket, key);
  },
});
