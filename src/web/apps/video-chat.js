// Two Way Video Chat page (/video-chat): exactly two people; a third is told the room is full.
import { start } from './room-app.js';

window.webcallApp = start({ capacity: 2 });
