// Conference page (/conference): several people in one room, a tile each. The room's size is
// the server's (--room-capacity); ?capacity=N makes this page refuse rooms with N people.
import { start } from './room-app.js';

const capacity = Number(new URLSearchParams(location.search).get('capacity')) || null;
window.webcallApp = start({ capacity });
