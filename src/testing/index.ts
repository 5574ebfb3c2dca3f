export { storeContract, type StoreFixture, type TestApi } from './store-contract.js';
